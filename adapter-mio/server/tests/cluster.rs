//! Cluster mode end to end: three `switchboard-mio` processes over one throwaway Redis; and
//! the publish and session cases on a mixed cluster (`switchboard`, `switchboard-mio`,
//! `switchboard`), the tokio binary taken from the same target directory.

switchboard_tests::cluster_suite!(env!("CARGO_BIN_EXE_switchboard-mio"));

switchboard_tests::mixed_cluster_suite!(
    switchboard_tests::cluster::sibling_binary(
        env!("CARGO_BIN_EXE_switchboard-mio"),
        "switchboard"
    ),
    env!("CARGO_BIN_EXE_switchboard-mio")
);
