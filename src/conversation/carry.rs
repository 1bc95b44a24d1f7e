//! A conversation carried from a busy group to the private chat: the deep-link payload that names the group, and the session copied over.

use crate::app::App;
use crate::store::SessionKey;

/// The deep-link payload that continues a group conversation in private.
pub fn group_payload(group: i64) -> String {
    format!("g{}", group.unsigned_abs())
}

/// The group a `/start g<group>` payload names, if it is one.
pub fn payload_group(payload: &str) -> Option<i64> {
    let digits = payload.trim().strip_prefix('g')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    i64::try_from(digits.parse::<u64>().ok()?)
        .ok()?
        .checked_neg()
}

/// For a `/start g<group>` link: copies the person's session in that group
/// to their private chat and returns the node it stands at.
pub(super) async fn carry_from_group(app: &App, key: SessionKey, payload: &str) -> Option<String> {
    let group = payload_group(payload)?;
    let from = SessionKey {
        chat: group,
        user: key.user,
    };
    let session = match app.store.load(from).await {
        Ok(Some(session)) => session,
        Ok(None) => return None,
        Err(e) => {
            log::error!(
                "chat {group} user {}: loading the session failed: {e}",
                key.user
            );
            return None;
        }
    };
    let node = session.node.clone()?;
    // A conversation already under way in private is not overwritten.
    let version = match app.store.load_versioned(key).await {
        Ok((own, version)) => {
            if own.as_ref().is_some_and(|own| {
                own.node
                    .as_deref()
                    .is_some_and(|at| at != node && at != crate::tree::ROOT_ID)
            }) {
                log::info!(
                    "user {}: a private conversation is under way; the group's is not carried over",
                    key.user
                );
                return None;
            }
            version
        }
        Err(e) => {
            log::error!("user {}: loading the private session failed: {e}", key.user);
            return None;
        }
    };
    // Written only if no step changed the private session meanwhile.
    if let Err(e) = app
        .store
        .save_answering(key, &session, false, app.clock.now(), None, Some(version))
        .await
    {
        log::error!(
            "user {}: carrying the session to private failed: {e}",
            key.user
        );
        return None;
    }
    log::info!(
        "user {}: the session in chat {group} continues in private",
        key.user
    );
    Some(node)
}
