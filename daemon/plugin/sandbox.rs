//! The rhai sandbox: one engine with explicit limits, a wall-clock deadline per call, no
//! `eval`, no `sleep`, no modules, and calls isolated so an engine panic becomes an error.
//! Owns script execution only; it must not perform I/O on a script's behalf.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, ImmutableString, Position, Scope};

use super::secret::SecretText;

/// Limits applied to every script.
pub(crate) mod limits {
    use std::time::Duration;
    pub(crate) const MAX_OPERATIONS: u64 = 2_000_000;
    pub(crate) const MAX_CALL_LEVELS: usize = 32;
    pub(crate) const MAX_EXPR_DEPTH: usize = 64;
    pub(crate) const MAX_FN_EXPR_DEPTH: usize = 32;
    pub(crate) const MAX_STRING_SIZE: usize = 64 * 1024;
    pub(crate) const MAX_ARRAY_SIZE: usize = 1024;
    pub(crate) const MAX_MAP_SIZE: usize = 256;
    pub(crate) const MAX_VARIABLES: usize = 256;
    pub(crate) const MAX_FUNCTIONS: usize = 128;
    /// Wall-clock budget for one call.
    pub(crate) const CALL_DEADLINE: Duration = Duration::from_millis(50);
}

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A script failure, with the position in the script when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub message: String,
    /// 1-based line and column.
    pub position: Option<(usize, usize)>,
}

impl ScriptError {
    fn from_rhai(e: &EvalAltResult) -> Self {
        let pos = e.position();
        let mut message = e.to_string();
        // rhai appends " (line L, position P)"; the caller prints file:line:column itself.
        if let Some(i) = message.rfind(" (line ") {
            message.truncate(i);
        }
        Self {
            message,
            position: position(pos),
        }
    }
}

fn position(pos: Position) -> Option<(usize, usize)> {
    Some((pos.line()?, pos.position().unwrap_or(1)))
}

/// The shared, configured engine.
pub struct Sandbox {
    engine: Engine,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with_extra(|_| {})
    }

    /// Builds the engine, letting tests register extra functions.
    pub fn with_extra(extra: impl FnOnce(&mut Engine)) -> Self {
        let mut engine = Engine::new_raw();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine
            .set_max_operations(limits::MAX_OPERATIONS)
            .set_max_call_levels(limits::MAX_CALL_LEVELS)
            .set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FN_EXPR_DEPTH)
            .set_max_string_size(limits::MAX_STRING_SIZE)
            .set_max_array_size(limits::MAX_ARRAY_SIZE)
            .set_max_map_size(limits::MAX_MAP_SIZE)
            .set_max_variables(limits::MAX_VARIABLES)
            .set_max_functions(limits::MAX_FUNCTIONS)
            .set_strict_variables(true);
        engine.disable_symbol("eval");
        engine.on_progress(|ops| {
            if ops % 64 != 0 {
                return None;
            }
            DEADLINE.with(|d| match d.get() {
                Some(t) if Instant::now() >= t => {
                    Some(Dynamic::from("wall-clock deadline exceeded"))
                }
                _ => None,
            })
        });
        // Output goes nowhere: a script's print could otherwise leak message bodies.
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.register_fn("sleep", |_: rhai::INT| -> Result<(), Box<EvalAltResult>> {
            Err("`sleep` is not available to plugins: the host performs requests and waits".into())
        });
        engine.register_fn(
            "sleep",
            |_: rhai::FLOAT| -> Result<(), Box<EvalAltResult>> {
                Err(
                    "`sleep` is not available to plugins: the host performs requests and waits"
                        .into(),
                )
            },
        );
        register_secret_type(&mut engine);
        register_helpers(&mut engine);
        super::inbound::register_helpers(&mut engine);
        extra(&mut engine);
        Self { engine }
    }

    /// Compiles a script (once, at load).
    pub fn compile(&self, script: &str) -> Result<AST, ScriptError> {
        self.engine.compile(script).map_err(|e| {
            let mut message = e.0.to_string();
            if let Some(i) = message.rfind(" (line ") {
                message.truncate(i);
            }
            ScriptError {
                message,
                position: position(e.1),
            }
        })
    }

    /// Calls a script function with a wall-clock deadline; panics inside the engine become
    /// errors. The top level of the script is not re-run.
    pub fn call(
        &self,
        ast: &AST,
        name: &str,
        args: Vec<Dynamic>,
        budget: Duration,
    ) -> Result<Dynamic, ScriptError> {
        DEADLINE.with(|d| d.set(Some(Instant::now() + budget)));
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut scope = Scope::new();
            self.engine.call_fn_with_options::<Dynamic>(
                CallFnOptions::new().eval_ast(false),
                &mut scope,
                ast,
                name,
                args,
            )
        }));
        DEADLINE.with(|d| d.set(None));
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ScriptError::from_rhai(&e)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(ScriptError {
                    message: format!("the script engine panicked ({what}); the call was abandoned"),
                    position: None,
                })
            }
        }
    }
}

/// Whether a compiled script defines `name` with `arity` parameters.
pub(crate) fn has_fn(ast: &AST, name: &str, arity: usize) -> bool {
    ast.iter_functions()
        .any(|f| f.name == name && f.params.len() == arity)
}

fn register_secret_type(engine: &mut Engine) {
    engine.register_type_with_name::<SecretText>("Secret");
    engine.register_fn("secret", |name: ImmutableString| SecretText::named(&name));
    engine.register_fn("+", |a: ImmutableString, b: SecretText| {
        SecretText::literal(a.as_str()).concat(b)
    });
    engine.register_fn("+", |a: SecretText, b: ImmutableString| {
        a.concat(SecretText::literal(b.as_str()))
    });
    engine.register_fn("+", |a: SecretText, b: SecretText| a.concat(b));
    engine.register_fn("to_string", |s: &mut SecretText| s.to_string());
    engine.register_fn("to_debug", |s: &mut SecretText| format!("{s:?}"));
}

fn register_helpers(engine: &mut Engine) {
    use base64::Engine as _;
    engine.register_fn("url_encode", |s: ImmutableString| {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
    });
    engine.register_fn("base64_encode", |s: ImmutableString| {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    });
    engine.register_fn(
        "parse_json",
        |s: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let v: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| format!("invalid JSON: {e}"))?;
            Ok(super::contract::json_to_dynamic(&v))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str) -> Result<Dynamic, ScriptError> {
        let sb = Sandbox::new();
        let ast = sb.compile(script)?;
        sb.call(&ast, "f", vec![], limits::CALL_DEADLINE)
    }

    #[test]
    fn top_level_is_not_rerun_and_functions_work() {
        let v = run("let x = 1; fn f() { 40 + 2 }").unwrap();
        assert_eq!(v.as_int().unwrap(), 42);
    }

    #[test]
    fn secrets_are_opaque_to_scripts() {
        let v = run(r#"fn f() { let t = "Bearer " + secret("tok"); `${t}|${t.to_string()}` }"#)
            .unwrap();
        assert_eq!(v.into_string().unwrap(), "[secret]|[secret]");
    }

    #[test]
    fn eval_and_sleep_are_disabled() {
        assert!(Sandbox::new().compile(r#"fn f() { eval("1") }"#).is_err());
        let e = run("fn f() { sleep(10); }").unwrap_err();
        assert!(e.message.contains("`sleep` is not available"), "{e:?}");
        let e = run("fn f() { sleep(1.5); }").unwrap_err();
        assert!(e.message.contains("`sleep` is not available"), "{e:?}");
    }

    #[test]
    fn engine_panic_is_contained() {
        let sb = Sandbox::with_extra(|e| {
            e.register_fn("boom", || -> rhai::INT { panic!("kaboom") });
        });
        let ast = sb.compile("fn f() { boom() }").unwrap();
        let e = sb
            .call(&ast, "f", vec![], limits::CALL_DEADLINE)
            .unwrap_err();
        assert!(e.message.contains("panicked (kaboom)"), "{e:?}");
        // The engine still works afterwards.
        let ast = sb.compile("fn f() { 1 }").unwrap();
        assert_eq!(
            sb.call(&ast, "f", vec![], limits::CALL_DEADLINE)
                .unwrap()
                .as_int()
                .unwrap(),
            1
        );
    }
}
