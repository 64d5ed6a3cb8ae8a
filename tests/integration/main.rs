//! kithd's integration tests: one crate, driving the real `kithd` binary.

mod browser;
mod builder;
mod support;
mod truth;

mod abuse;
mod answers;
mod calendar;
mod config_files;
mod consent;
mod corpus;
mod daemon;
mod daily_life;
mod hardening;
mod health;
mod heard;
mod hostile;
mod init;
mod keeping;
mod leases;
mod ledger;
mod lifecycle;
mod person_page;
mod plan_dirs;
mod plan_dirs_run;
mod plugins_http;
mod preview_golden;
mod properties;
mod replies;
mod runtime;
mod server_reload;
mod shared_ledger;
mod shared_plans;
mod smtp;
mod state_dir;
mod systemd;
