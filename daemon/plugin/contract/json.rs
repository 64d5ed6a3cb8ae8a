//! JSON to and from rhai values: a script's `json` body out, a gateway's JSON answer in.
//! A secret never becomes JSON.

use rhai::{Array, Dynamic, Map};

use super::{ContractError, SecretText, err};

/// Converts a script value to JSON; secrets are refused.
pub fn dynamic_to_json(v: &Dynamic) -> Result<serde_json::Value, ContractError> {
    use serde_json::Value;
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null));
    }
    if v.is_string() {
        return Ok(Value::String(v.clone().into_string().unwrap_or_default()));
    }
    if v.is::<SecretText>() {
        return err(ContractError::Shape(
            "a secret can't be placed in a JSON body; use a header, `bearer` or `basic_auth`",
        ));
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a
            .iter()
            .map(dynamic_to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, v) in m.iter() {
            out.insert(k.to_string(), dynamic_to_json(v)?);
        }
        return Ok(Value::Object(out));
    }
    err(ContractError::NotJson(v.type_name()))
}

/// Converts JSON to a script value.
pub fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(a) => a.iter().map(json_to_dynamic).collect::<Array>().into(),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.as_str().into(), json_to_dynamic(v));
            }
            m.into()
        }
    }
}
