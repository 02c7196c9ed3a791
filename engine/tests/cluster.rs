//! A cluster's checkpoint agreement, in a test binary of its own: forming a cluster installs
//! the fail-stop panic hook for the whole process (`lpm_engine::cluster`), which parks any
//! timely thread that panics, so no other test should share the process with it.

use std::sync::Arc;
use std::time::Duration;

use lpm_engine::{Engine, EngineConfig};

/// Every process of a cluster offers the ticks of the checkpoints it holds; the handshake
/// settles on the newest tick all of them offered (each holds only its share of the state, so
/// a tick one process lacks is no use), or on none.
#[test]
fn a_cluster_agrees_on_the_newest_checkpoint_every_process_offers() {
    use lpm_engine::cluster::ClusterConfig;
    use lpm_engine::PushFeed;
    let agree = |offers: Vec<Vec<u64>>| -> Vec<Option<u64>> {
        let peers: Vec<String> = (0..offers.len())
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").to_string()
            })
            .collect();
        let runs: Vec<_> = offers
            .into_iter()
            .enumerate()
            .map(|(i, offered)| {
                let peers = peers.clone();
                std::thread::spawn(move || {
                    let mut cluster =
                        ClusterConfig::new(i, peers, Duration::from_secs(30)).expect("config");
                    cluster.checkpoints = offered;
                    let agreed = cluster.agreed.clone();
                    let feed = Arc::new(PushFeed::new(8));
                    let engine =
                        Engine::start_in(EngineConfig::default(), feed.clone(), Some(cluster))
                            .expect("the cluster forms");
                    feed.close();
                    engine.join().expect("the cluster ends");
                    *agreed.get().expect("set once the cluster formed")
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("thread"))
            .collect()
    };
    assert_eq!(
        agree(vec![vec![5, 9, 12], vec![9, 12, 15], vec![1, 9, 12]]),
        vec![Some(12); 3]
    );
    assert_eq!(agree(vec![vec![5, 9], vec![12]]), vec![None; 2]);
    assert_eq!(agree(vec![vec![], vec![7]]), vec![None; 2]);
}
