//! Cluster mode end to end: three `switchboard` processes over one throwaway Redis.

switchboard_tests::cluster_suite!(env!("CARGO_BIN_EXE_switchboard"));
