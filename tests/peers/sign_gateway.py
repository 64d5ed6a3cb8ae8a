"""Signs an inbound SMS webhook as the gateway would, with the gateway's own SDK.

    sign_gateway.py twilio AUTH_TOKEN URL PARAMS_JSON
        prints the X-Twilio-Signature for a POST of PARAMS to URL
    sign_gateway.py vonage SECRET METHOD PARAMS_JSON
        prints the parameters as JSON with `timestamp` and `sig` added (METHOD: md5, sha1,
        sha256, sha512 — HMACs, as the Vonage SDK signs)
"""
import json
import sys

kind = sys.argv[1]
if kind == "twilio":
    from twilio.request_validator import RequestValidator

    token, url, params = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    print(RequestValidator(token).compute_signature(url, params))
elif kind == "vonage":
    from vonage_http_client.auth import Auth

    secret, method, params = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    auth = Auth(api_key="key", signature_secret=secret, signature_method=method)
    params["sig"] = auth.sign_params(params)
    print(json.dumps(params))
else:
    sys.exit(f"unknown gateway {kind}")
