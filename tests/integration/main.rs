//! kithd's integration tests: one crate, driving the real `kithd` binary.

mod support;

mod config_files;
mod daemon;
mod runtime;
mod corpus;
mod hostile;
mod plugins_http;
mod preview_golden;
mod smtp;
mod systemd;
