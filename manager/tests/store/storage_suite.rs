//! openraft's storage conformance suite against the log store (write-ahead log) and the
//! state machine (redb).

use crate::common::TempDir;
use manager::store::TypeConfig;
use manager::store::log_store::LogStore;
use manager::store::state_machine::StateMachineStore;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb, StorageError, StorageIOError};

struct StoreFiles;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for StoreFiles {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = TempDir::new("suite");
        let open_err = |e: manager::store::StoreError| {
            StorageIOError::new(ErrorSubject::Store, ErrorVerb::Read, &e)
        };
        let log = LogStore::open(&dir.path().join("log")).map_err(open_err)?;
        let sm = StateMachineStore::open(&dir.path().join("state.redb"), 16).map_err(open_err)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn the_log_store_and_state_machine_pass_the_openraft_suite() {
    if let Err(e) = Suite::test_all(StoreFiles) {
        panic!("storage suite failed: {e}");
    }
}
