//! One thin function per door of driftd; each does its command's work and returns what
//! `main` needs for the exit code.

pub mod analyze;
pub mod baseline;
pub mod config_check;
pub mod demo;
pub mod replay;
pub mod run;
