//! REST routes under `/api/v1`, one module per resource.

pub mod cases;
pub mod dto;
pub mod engine;
pub mod hotspots;
pub mod reports;
pub mod responsibles;
pub mod sightings;
pub mod views;
