//! What every asker does once a question is posted (seek's weekly question, `POST /ask`, a
//! quality alarm): keep where the Web API posted it, and edit the pending question it
//! supersedes to say so (its buttons with it). And how a question's message is rendered for the
//! state it has to show, when an edit that failed is tried again.
//!
//! Without a bot token nothing is edited: the states are recorded, and a click on a stale
//! question is refused as ever.

use crate::Timestamp;
use crate::aws::dynamo::{Edit, EditDue, LaunchState, LifecycleStore};
use crate::domain::Posted;
use crate::slack::{Channel, RetryPolicy, SlackPoster, launch, messages};
use serde_json::Value;

/// After posting request `request_id`'s question (asked at `asked_at`; `posted` where the Web
/// API put it), superseding request `supersedes`. Failures are logged: the question is out,
/// and an edit left undone is tried again by the heartbeat's sweep.
pub async fn after_posting<S: LifecycleStore, P: SlackPoster>(
    store: &S,
    channel: &Channel<'_, P>,
    request_id: &str,
    asked_at: Timestamp,
    posted: Option<&Posted>,
    supersedes: Option<&str>,
    policy: RetryPolicy,
) {
    if let Some(p) = posted
        && let Err(e) = store.record_message(request_id, p).await
    {
        tracing::warn!(request_id, error = %e, "could not keep where the question was posted; it cannot be edited");
    }
    if let Some(prev) = supersedes.filter(|p| *p != request_id) {
        edit_superseded(store, channel, prev, asked_at, policy).await;
    }
}

/// Edits a pending question that a newer one (asked at `by_at`) superseded, when the Web API
/// posted it: "Superseded by the question of <date>", no buttons.
pub async fn edit_superseded<S: LifecycleStore, P: SlackPoster>(
    store: &S,
    channel: &Channel<'_, P>,
    request_id: &str,
    by_at: Timestamp,
    policy: RetryPolicy,
) {
    if !channel.edits() {
        return;
    }
    let request = match store.question(request_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(request_id, error = %e, "could not read the superseded question");
            return;
        }
    };
    let Some(at) = &request.posted else { return };
    if request.decision.is_some() || request.expired_at.is_some() {
        return;
    }
    let edit = Edit::Superseded { by_at };
    if let Err(e) = store.edit_due(request_id, edit).await {
        tracing::warn!(request_id, error = %e, "could not note the superseded question's edit");
    }
    match channel
        .edit(at, &messages::superseded_by(&request, by_at), policy)
        .await
    {
        Ok(_) => {
            if let Err(e) = store.edit_done(request_id, edit).await {
                tracing::warn!(request_id, error = %e, "could not note the edit; it may be made again");
            }
        }
        Err(e) => {
            tracing::warn!(request_id, error = %e, "could not edit the superseded question; a later sweep tries again")
        }
    }
}

/// The message a question's edit shows: its outcome (an approval with its run once started),
/// its expiry, or the question that superseded it. `None`: nothing to show (not decided yet).
pub fn edited(due: &EditDue) -> Option<Value> {
    let request = &due.launch.request;
    Some(match due.edit {
        Edit::Decided => {
            let decision = request.decision.as_ref()?;
            match &due.launch.state {
                Some(LaunchState::Started { run_id, .. }) => {
                    launch::approved_with_run(request, decision, run_id)
                }
                _ => messages::decided_request(request, decision),
            }
        }
        Edit::Expired => messages::expired(request, request.expired_at?),
        Edit::Superseded { by_at } => messages::superseded_by(request, by_at),
    })
}
