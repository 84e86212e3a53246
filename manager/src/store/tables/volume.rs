//! The volume table, indexed by stack.

use super::stack_record;
use api::cluster::Volume;

stack_record!(Volume, "The volumes stack `stack` declared.");
