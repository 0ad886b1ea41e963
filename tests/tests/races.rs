//! Races on one credential (issue 19, items 2 and 3): 64 concurrent refreshes of one token and 64
//! concurrent redemptions of one code, 20 rounds each, give exactly one success per round and
//! never a 5xx; 16 concurrent sign-ins of one user all end in a working session and a valid code.

#![allow(clippy::unwrap_used)]

use futures_util::future::join_all;
use latchkey_core::{AccessTokenFormat, ClientType};
use latchkey_tests::browser::{Browser, setup};
use latchkey_tests::oidc::{self, authorize, authorize_path, query, register};
use latchkey_tests::{TestServer, e2e};
use reqwest::StatusCode;
use serde_json::Value;

const ROUNDS: usize = 20;
const RACERS: usize = 64;

/// Counts the answers of one round: (successes, refusals with `invalid_grant`).
fn tally(round: usize, answers: &[(StatusCode, Value)]) -> (usize, usize) {
    let mut ok = 0;
    let mut refused = 0;
    for (st, body) in answers {
        match st.as_u16() {
            200 => ok += 1,
            400 => {
                assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
                refused += 1;
            }
            other => panic!("round {round}: {other} {body}"),
        }
    }
    (ok, refused)
}

async fn sixty_four_refreshes_of_one_token_give_one_success_per_round(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    let code = oidc::code(s, &mut b, &c).await;
    let (st, body) = oidc::redeem(s, &c, &code).await;
    assert_eq!(st, 200, "{body}");
    let mut rt = body["refresh_token"].as_str().unwrap().to_owned();
    for round in 0..ROUNDS {
        let answers = join_all((0..RACERS).map(|_| oidc::refresh(s, &c, &rt))).await;
        let (ok, refused) = tally(round, &answers);
        assert_eq!(
            (ok, refused),
            (1, RACERS - 1),
            "round {round}: exactly one winner"
        );
        // The losers came within the grace window as the token rotated last: the grant lives
        // on, and the winner's token starts the next round.
        let winner = answers.iter().find(|(st, _)| *st == 200).unwrap();
        winner.1["refresh_token"].as_str().unwrap().clone_into(&mut rt);
    }
}

async fn sixty_four_redemptions_of_one_code_give_one_success_per_round(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let mut b = Browser::default();
    for round in 0..ROUNDS {
        let code = oidc::code(s, &mut b, &c).await;
        let answers = join_all((0..RACERS).map(|_| oidc::redeem(s, &c, &code))).await;
        let (ok, refused) = tally(round, &answers);
        assert_eq!(
            (ok, refused),
            (1, RACERS - 1),
            "round {round}: exactly one winner"
        );
    }
}

async fn sixteen_sign_ins_of_one_user_at_once_all_give_a_session_and_a_valid_code(s: &TestServer) {
    setup(s, "acme").await;
    let c = register(s, "acme", ClientType::Confidential, true, AccessTokenFormat::Jwt);
    let runs = (0..16).map(|_| async {
        let mut b = Browser::default();
        let back = authorize(s, &mut b, &authorize_path(&c, &[]), "acme", true).await;
        (query(&back)["code"].clone(), b)
    });
    let done = join_all(runs).await;
    let redeemed = join_all(done.iter().map(|(code, _)| oidc::redeem(s, &c, code))).await;
    for (st, body) in &redeemed {
        assert_eq!(*st, 200, "every code is valid: {body}");
        assert_eq!(
            oidc::userinfo(s, "acme", body["access_token"].as_str().unwrap()).await,
            200
        );
    }
    for (_, mut b) in done {
        let (st, _, page) = b.get(s, "/t/acme/account").await;
        assert_eq!(st, StatusCode::OK, "every session works: {page}");
    }
}

e2e!(
    sixty_four_refreshes_of_one_token_give_one_success_per_round,
    sixty_four_redemptions_of_one_code_give_one_success_per_round,
    sixteen_sign_ins_of_one_user_at_once_all_give_a_session_and_a_valid_code,
);
