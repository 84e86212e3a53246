//! The executor's one error type: why a task cannot be turned into a container, or
//! why a call to the engine failed. A task that meets one is `rejected` (or `failed`,
//! once its container ran) with the error's text as its status message.

use api::client::ClientError;

/// What went wrong with a task on this node.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The task names no image.
    #[error("task {task}: the service has no image")]
    NoImage {
        /// The task's id.
        task: String,
    },
    /// A field of the service spec the node's engine cannot honour, or holds a value
    /// it cannot take. `field` is the compose key path (`deploy.resources.limits.cpus`).
    #[error("{field}: {why}")]
    Unsupported {
        /// The compose key path.
        field: String,
        /// What is wrong and what to do instead.
        why: String,
    },
    /// The image is not on this node and the pull policy forbids pulling it.
    #[error("image {image} is not on this node and pull_policy is {policy}")]
    NotPulled {
        /// The image reference.
        image: String,
        /// The policy in force (`never`).
        policy: String,
    },
    /// Pulling the image failed.
    #[error("pull {image}: {why}")]
    Pull {
        /// The image reference.
        image: String,
        /// The engine's or registry's reason.
        why: String,
    },
    /// A secret or config the task uses is not in the node's assignments (it does not
    /// exist, or the manager could not open it).
    #[error("{kind} {id} does not exist")]
    MissingFile {
        /// `secret` or `config`.
        kind: &'static str,
        /// Its cluster name.
        id: String,
    },
    /// Writing or removing a task's secret and config files failed.
    #[error("{op} {path}: {source}")]
    TaskFiles {
        /// The operation (`mount a tmpfs on`, `write`, ...).
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A call to the node's engine failed.
    #[error("{op}: {source}")]
    Engine {
        /// The operation, with its object (`create the container of task x`).
        op: String,
        /// The client's error.
        source: ClientError,
    },
}

impl ExecutorError {
    /// An [`ExecutorError::Unsupported`] of `field`.
    pub fn unsupported(field: impl Into<String>, why: impl Into<String>) -> ExecutorError {
        ExecutorError::Unsupported {
            field: field.into(),
            why: why.into(),
        }
    }

    /// An [`ExecutorError::Engine`] for `op`.
    pub fn engine(op: impl Into<String>) -> impl FnOnce(ClientError) -> ExecutorError {
        let op = op.into();
        move |source| ExecutorError::Engine { op, source }
    }
}
