#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

//! ## Crate map
//!
//! The pure core below has no web-sys, no clock and no I/O: the browser glue
//! (`web`, wasm32 only) feeds it signals and `now_ms`, and acts on its answers.

pub mod config;
#[cfg(feature = "journeys")]
pub mod delivery;
pub mod engine;
pub mod error;
pub mod experiment;
pub mod funnel;
#[cfg(feature = "journeys")]
pub mod journey;
pub mod model;
pub mod one_tap;
#[cfg(feature = "journeys")]
pub mod personalise;
pub mod policy;
pub mod preference_centre;
pub mod privacy;
pub mod repair;
pub mod rules;
pub mod segment;
pub mod sorted;
pub mod state;
pub mod template;
pub mod value;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
