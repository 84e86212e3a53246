//! The secret and config tables, each indexed by stack.

use super::stack_record;
use api::secret::{Config, Secret};

stack_record!(Secret, "The secrets stack `stack` declared.");
stack_record!(Config, "The configs stack `stack` declared.");
