//! The shape of the connector actions a workflow may call, with their
//! arguments, so that validation can reject an unknown action or argument
//! before anything runs. The actions themselves are listed once, by the
//! provider that implements them, and reach the parser as a [`Catalog`].

/// One callable connector action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    /// `connector.action`, as written after `call:`.
    pub name: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    /// Arguments that are URL paths: their text stays as written and each
    /// `${...}` value in them is encoded as one path segment (see
    /// [`crate::expr::Template::url_path_field`]).
    pub url_paths: &'static [&'static str],
    pub summary: &'static str,
}

/// The actions a workflow may call. Core holds no provider's actions: the
/// runtime assembles a catalog from its registered providers, each of which
/// lists its own (crates/server/src/providers/), and gives it to
/// [`crate::workflow::parse`] and [`crate::workflow::json_schema`].
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    actions: Vec<&'static ActionSpec>,
}

impl Catalog {
    /// One catalog from each provider's list of actions, in the given order.
    pub fn new(lists: impl IntoIterator<Item = &'static [ActionSpec]>) -> Catalog {
        Catalog {
            actions: lists.into_iter().flatten().collect(),
        }
    }

    pub fn action(&self, name: &str) -> Option<&'static ActionSpec> {
        self.actions.iter().copied().find(|a| a.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static ActionSpec> + '_ {
        self.actions.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(|a| a.name).collect()
    }
}

impl ActionSpec {
    pub fn accepts(&self, arg: &str) -> bool {
        self.required.contains(&arg) || self.optional.contains(&arg)
    }
}
