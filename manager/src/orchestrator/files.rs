//! A stack's secrets and configs as cluster objects: each one the stack declares (not
//! external) is a [`Secret`] or [`Config`] named as the stack file says
//! (`<stack>_<key>` by default). A secret's value arrives sealed in the stack spec
//! (the API seals it as it takes the stack), so this pass copies ciphertext and never
//! sees a value. An object whose value changed is updated; one no longer in the stack
//! is removed once no task that is to run, or still runs, uses it. A task whose
//! secret or config does not exist (an `external` one not made yet) stays pending,
//! saying which.

use super::change::{Change, Plan};
use super::{ended, wanted};
use crate::store::State;
use api::cluster::{Meta, Object, Stack, Task};
use api::secret::{Config, Secret};
use api::stack::{FileObjectSpec, StackSpec};
use std::collections::BTreeSet;

/// The cluster name of secret or config `key` of stack `stack`.
pub fn file_object_id(stack: &str, key: &str, spec: &FileObjectSpec) -> String {
    super::stacks::declared_name(stack, key, &spec.name)
}

/// The config object of `value` (digest and size computed).
pub fn config_of(meta: Meta, stack: &str, value: &[u8]) -> Config {
    let digest = ring::digest::digest(&ring::digest::SHA256, value);
    Config {
        meta,
        stack: stack.to_owned(),
        digest: format!("sha256:{}", data_encoding::HEXLOWER.encode(digest.as_ref())),
        size: value.len() as u64,
        data: data_encoding::BASE64.encode(value),
    }
}

/// Whether a task still needs its secrets and configs on its node.
fn in_use(tasks: &[&Task], id: &str, secret: bool) -> bool {
    tasks.iter().any(|t| {
        let refs = if secret {
            &t.spec.secrets
        } else {
            &t.spec.configs
        };
        (wanted(t) || !ended(t.status.state)) && refs.iter().any(|r| r.source == id)
    })
}

/// Plans the secrets and configs of stack `id` (`stack: None` once it is deleted).
/// `secrets` and `configs` are the objects that name the stack; `tasks` every task.
pub fn plan_files(
    id: &str,
    stack: Option<&Stack>,
    secrets: &[&Secret],
    configs: &[&Config],
    tasks: &[&Task],
) -> Plan {
    let mut plan = Plan::default();
    let empty = StackSpec::default();
    let spec = stack.map_or(&empty, |s| &s.spec);

    let mut wanted_secrets = BTreeSet::new();
    for (key, declared) in &spec.secrets {
        let Some(sealed) = declared.sealed.as_ref().filter(|_| !declared.external) else {
            continue;
        };
        let name = file_object_id(id, key, declared);
        wanted_secrets.insert(name.clone());
        match secrets.iter().find(|s| s.meta.id == name) {
            None => {
                let mut meta = Meta::new(name);
                meta.labels = declared.labels.clone();
                plan.push(Change::Create(Object::Secret(Secret {
                    meta,
                    stack: id.to_owned(),
                    value: sealed.clone(),
                })));
            }
            Some(existing) if existing.value.digest != sealed.digest => {
                let mut secret = (*existing).clone();
                secret.value = sealed.clone();
                plan.push(Change::Update(Object::Secret(secret)));
            }
            Some(_) => {}
        }
    }
    for secret in secrets {
        if !wanted_secrets.contains(&secret.meta.id) && !in_use(tasks, &secret.meta.id, true) {
            plan.push(Change::delete(&Object::Secret((*secret).clone())));
        }
    }

    let mut wanted_configs = BTreeSet::new();
    for (key, declared) in &spec.configs {
        let Some(content) = declared.content.as_ref().filter(|_| !declared.external) else {
            continue;
        };
        let name = file_object_id(id, key, declared);
        wanted_configs.insert(name.clone());
        let mut meta = Meta::new(name.clone());
        meta.labels = declared.labels.clone();
        let config = config_of(meta, id, content.as_bytes());
        match configs.iter().find(|c| c.meta.id == name) {
            None => plan.push(Change::Create(Object::Config(config))),
            Some(existing) if existing.digest != config.digest => {
                let mut updated = (*existing).clone();
                updated.digest = config.digest;
                updated.size = config.size;
                updated.data = config.data;
                plan.push(Change::Update(Object::Config(updated)));
            }
            Some(_) => {}
        }
    }
    for config in configs {
        if !wanted_configs.contains(&config.meta.id) && !in_use(tasks, &config.meta.id, false) {
            plan.push(Change::delete(&Object::Config((*config).clone())));
        }
    }
    plan
}

/// Points `spec`'s secret and config references at their cluster names, with their
/// default targets made explicit: a secret's key (under `/run/secrets`), a config's
/// `/<key>`.
pub fn resolve_references(spec: &mut api::ServiceSpec, stack: &StackSpec) {
    for r in &mut spec.secrets {
        let key = r.source.clone();
        r.target.get_or_insert_with(|| key.clone());
        if let Some(declared) = stack.secrets.get(&key) {
            r.source = file_object_id(&stack.name, &key, declared);
        }
    }
    for r in &mut spec.configs {
        let key = r.source.clone();
        r.target.get_or_insert_with(|| format!("/{key}"));
        if let Some(declared) = stack.configs.get(&key) {
            r.source = file_object_id(&stack.name, &key, declared);
        }
    }
}

/// Why a task cannot be placed yet: the first secret or config it uses that does not
/// exist (an `external` one not created yet).
pub fn missing_file(state: &State, task: &Task) -> Option<String> {
    if let Some(r) = task
        .spec
        .secrets
        .iter()
        .find(|r| state.secrets.get(&r.source).is_none())
    {
        return Some(format!("secret {} does not exist", r.source));
    }
    task.spec
        .configs
        .iter()
        .find(|r| state.configs.get(&r.source).is_none())
        .map(|r| format!("config {} does not exist", r.source))
}
