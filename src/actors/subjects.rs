//! Who is registered: token subjects the engine has seen in the store, so a valid token for a
//! customer or rider that was never registered is refused without a query per request.

use std::collections::HashSet;
use std::sync::RwLock;

use uuid::Uuid;

/// Remembered subjects beyond which the set starts over (a few tens of MB at most; a
/// forgotten subject costs one store lookup on its next request).
const MAX_REMEMBERED: usize = 1_000_000;

#[derive(Default)]
pub struct Subjects {
    known: RwLock<HashSet<Uuid>>,
}

impl Subjects {
    pub fn knows(&self, id: Uuid) -> bool {
        self.known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    pub fn remember(&self, id: Uuid) {
        // A set of ids has no invariant a panicking holder could break.
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_REMEMBERED {
            known.clear();
        }
        known.insert(id);
    }
}
