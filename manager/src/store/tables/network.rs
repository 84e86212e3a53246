//! The network table, indexed by stack.

use super::stack_record;
use api::cluster::Network;

stack_record!(Network, "The networks stack `stack` declared.");
