//! Engine errors.

/// What can go wrong running the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// timely could not start its workers.
    #[error("could not start the dataflow workers: {0}")]
    Timely(String),
    /// A worker thread failed.
    #[error("a dataflow worker failed: {0}")]
    WorkerFailed(String),
    /// No tick is complete yet, so there is nothing consistent to read.
    #[error("the engine has not completed its first tick yet")]
    NotReady,
    /// The engine stopped.
    #[error("the engine has stopped")]
    Stopped,
    /// The cluster could not form (see [`crate::cluster`]).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// A read did not complete in time.
    #[error("the engine did not answer in time")]
    Timeout,
}
