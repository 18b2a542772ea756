//! Framework integrations: each only applies the engine's [`Outcome`](crate::Outcome).

pub mod tower;
