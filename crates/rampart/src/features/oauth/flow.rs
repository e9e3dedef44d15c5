//! A begun sign-in with a provider, kept in the session of the browser that began it: the
//! `state`, `nonce` and PKCE verifier never leave the server, a flow is used up by the first
//! answer that names its `state` (right or wrong), and it expires after `SECURITY_OAUTH_WITHIN`.
//! A callback opened in another browser finds no flow.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::web::context::AuthContext;

const FLOWS_KEY: &str = "_oauth_flows";
/// At most this many flows wait in one session (the oldest go first).
const MAX_FLOWS: usize = 4;

/// What a flow ends in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Signing in (or up).
    Login,
    /// Linking the provider account to this signed-in user.
    Link(i64),
    /// Re-authenticating this signed-in user (freshness) through a provider account linked
    /// to them.
    Verify(i64),
}

/// A begun flow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Flow {
    /// The provider's name.
    pub(crate) provider: String,
    /// The `state` sent to the provider.
    pub(crate) state: String,
    /// The `nonce` the ID token must carry (OpenID Connect).
    pub(crate) nonce: Option<String>,
    /// The PKCE verifier.
    pub(crate) verifier: String,
    /// The redirect URI the authorization was asked with (the token request repeats it).
    pub(crate) redirect_uri: String,
    /// Where to go once signed in (a safe local target).
    pub(crate) next: Option<String>,
    /// Sign-in or link.
    pub(crate) purpose: Purpose,
    /// Unix seconds after which the flow is refused.
    pub(crate) expires: u64,
}

/// Keeps `flow` in the session.
pub(crate) async fn save(ctx: &AuthContext, flow: Flow) -> crate::Result<()> {
    let now = ctx.security().unix_now();
    let mut all: Vec<Flow> = ctx.session.get(FLOWS_KEY).await?.unwrap_or_default();
    all.retain(|f| f.expires >= now);
    all.push(flow);
    if all.len() > MAX_FLOWS {
        let drop = all.len() - MAX_FLOWS;
        all.drain(..drop);
    }
    ctx.session.insert(FLOWS_KEY, all).await?;
    Ok(())
}

/// Takes (uses up) the flow of `state` begun in this session, if any.
pub(crate) async fn take(ctx: &AuthContext, state: &str) -> crate::Result<Option<Flow>> {
    if ctx.session.id().is_none() {
        return Ok(None);
    }
    let mut all: Vec<Flow> = ctx.session.get(FLOWS_KEY).await?.unwrap_or_default();
    let Some(index) = all
        .iter()
        .position(|f| bool::from(f.state.as_bytes().ct_eq(state.as_bytes())))
    else {
        return Ok(None);
    };
    let flow = all.remove(index);
    ctx.session.insert(FLOWS_KEY, all).await?;
    Ok(Some(flow))
}
