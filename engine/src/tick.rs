//! Logical time. Every module that builds or reads the dataflow names its time through these
//! two types, kept in a module of their own so that none of them has to import another for it.

use differential_dataflow::VecCollection;

/// Logical time: the ingestion tick.
pub type Tick = u64;

/// A collection at ticks with integer multiplicities.
pub type Coll<'s, D> = VecCollection<'s, Tick, D, isize>;
