//! The update a worker took up, shared by the handlers that look at it rather than copied for each.
//!
//! dptree hands a handler its arguments by cloning them out of the
//! dependency map, and a message or a press is a deep tree of strings (a
//! press carries the whole menu it was made on, every button of it). The
//! schema's first step puts the update in as `Shared`, a counted
//! reference to the very value the dispatcher inserted, and the handlers
//! take `Msg` or `Query`, views of it, so that an update is never copied
//! however many handlers look at it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::panic::Location;
use std::sync::Arc;

use dptree::di::DependencyMap;
use dptree::{HandlerSignature, Type};
use teloxide::dispatching::UpdateHandler;
use teloxide::types::{CallbackQuery, Message, Update, UpdateKind};

/// The update being handled.
#[derive(Clone)]
pub(super) struct Shared(pub(super) Arc<Update>);

impl Deref for Shared {
    type Target = Update;

    fn deref(&self) -> &Update {
        &self.0
    }
}

/// The first step of the schema: the update the dispatcher inserted, put
/// in again as `Shared`, without a copy.
#[track_caller]
pub(super) fn share<E: Send + Sync + 'static>() -> UpdateHandler<E> {
    let signature = HandlerSignature::Other {
        obligations: BTreeMap::from([(Type::of::<Update>(), Location::caller())]),
        guaranteed_outcomes: BTreeSet::from([Type::of::<Shared>()]),
        conditional_outcomes: BTreeSet::new(),
        continues: true,
    };
    dptree::from_fn(
        |mut deps: DependencyMap, next| async move {
            let update: Arc<Update> = deps.get();
            deps.insert(Shared(update));
            next(deps).await
        },
        signature,
    )
}

/// The message of an update that is one.
#[derive(Clone)]
pub(super) struct Msg(Arc<Update>);

impl Msg {
    pub(super) fn of(update: Shared) -> Option<Msg> {
        matches!(update.kind, UpdateKind::Message(_)).then_some(Msg(update.0))
    }
}

impl Deref for Msg {
    type Target = Message;

    fn deref(&self) -> &Message {
        match &self.0.kind {
            UpdateKind::Message(msg) => msg,
            // `of` makes a `Msg` of a message only.
            _ => unreachable!("a Msg holds a message"),
        }
    }
}

/// The press of an update that is one.
#[derive(Clone)]
pub(super) struct Query(Arc<Update>);

impl Query {
    pub(super) fn of(update: Shared) -> Option<Query> {
        matches!(update.kind, UpdateKind::CallbackQuery(_)).then_some(Query(update.0))
    }
}

impl Deref for Query {
    type Target = CallbackQuery;

    fn deref(&self) -> &CallbackQuery {
        match &self.0.kind {
            UpdateKind::CallbackQuery(query) => query,
            // `of` makes a `Query` of a press only.
            _ => unreachable!("a Query holds a press"),
        }
    }
}
