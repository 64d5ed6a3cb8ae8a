//! kithd's integration tests: one crate, driving the real `kithd` binary.

mod support;

mod config_files;
mod corpus;
mod preview_golden;
