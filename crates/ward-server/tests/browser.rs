//! The web UI in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver, fantoccini) against ward served on a loopback port. What a person does: sign
//! in and ask from the form, find the request in the inbox and decide it in one action, see the
//! grant count down, read its logs redacted and follow them live until the grant ends; a
//! requester sees no approve button on their own request. Every page is checked with axe-core
//! (WCAG 2 A and AA) as it is shown. With `WARD_SCREENSHOTS=DIR`, each page is saved there as a
//! PNG.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use fantoccini::{Client, ClientBuilder, Locator};
use ward_core::SystemClock;
use ward_server::{HttpSettings, UiSettings, router};
use ward_service::{Broker, Config, RequestInput};
use ward_store_sql::SqlStore;

struct Ward {
    url: String,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

/// The quickstart served on a free loopback port, as `ward quickstart` serves it: on SQLite, or
/// on a fresh PostgreSQL database when `postgres` names one.
async fn ward(postgres: Option<String>) -> Ward {
    let dir = tempfile::tempdir().unwrap();
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/ward.toml"));
    let data = dir.path().join("data").display().to_string();
    let config = Config::load(&path, &|name| (name == "WARD_DATA_DIR").then(|| data.clone())).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let store = match postgres {
        Some(url) => Arc::new(SqlStore::connect(&url).await.unwrap()),
        None => Arc::new(SqlStore::open_sqlite(&dir.path().join("data/ward.db")).await.unwrap()),
    };
    let broker = ward_service::broker_for(&config, store, Arc::new(SystemClock)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let policy_tests = config.web.policy_tests.clone();
    let ui = UiSettings { public_url: Some(url.clone()), policy_tests, ..UiSettings::default() };
    let app = router(broker.clone(), &HttpSettings { ui, ..HttpSettings::default() });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Ward { url, broker, _dir: dir }
}

impl Ward {
    fn token(&self, name: &str) -> impl std::future::Future<Output = String> + '_ {
        let name = name.to_owned();
        async move {
            let operator = Broker::local_operator("test");
            self.broker.tokens().mint(&operator, &name, 3600, None).await.unwrap().0
        }
    }

    /// A browser of its own (its own cookies), at phone width or desktop width.
    async fn browser(&self, driver: &ward_testkit::TestBrowser, phone: bool) -> Client {
        let (width, height) = if phone { (390, 844) } else { (1280, 900) };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(ward_testkit::TestBrowser::capabilities(width, height))
            .connect(driver.url())
            .await
            .expect("a Chromium session")
    }

    /// Opens ward in `browser` and signs `name` in with a ward token, as a person would.
    async fn sign_in(&self, browser: &Client, name: &str) {
        browser.goto(&format!("{}/", self.url)).await.unwrap();
        assert_eq!(browser.current_url().await.unwrap().path(), "/ui/login", "no session: the sign-in");
        shot(browser, "sign-in").await;
        let token = self.token(name).await;
        browser.find(Locator::Css("#token")).await.unwrap().send_keys(&token).await.unwrap();
        browser.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
        let who = browser.wait().for_element(Locator::Id("who")).await.unwrap().text().await.unwrap();
        assert_eq!(who, name, "signed in, on the home page");
    }
}

/// The text of what `locator` finds, once it reads `expected` or after ten seconds. The page
/// changes under the test: htmx swaps in each answer to what is typed, and a click that submits a
/// form loads a new page. An element found a moment ago can be gone (stale) when its text is
/// asked for; then it is found again.
async fn text_settles_on(browser: &Client, locator: Locator<'_>, expected: &str) -> String {
    let mut seen = String::new();
    for _ in 0..100 {
        if let Ok(element) = browser.find(locator).await {
            match element.text().await {
                Ok(text) if text == expected => return text,
                Ok(text) => seen = text,
                Err(e) if e.is_stale_element_reference() => {}
                Err(e) => panic!("reading {locator:?}: {e}"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    seen
}

/// Clicks what `locator` finds, a button that submits its form, and waits until the page it
/// leads to has replaced this one: until then, the old page's elements are still there to find.
async fn click_and_leave(browser: &Client, locator: Locator<'_>) {
    let page = browser.find(Locator::Css("html")).await.unwrap();
    browser.find(locator).await.unwrap().click().await.unwrap();
    for _ in 0..100 {
        match page.tag_name().await {
            Err(e) if e.is_stale_element_reference() => return,
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("clicking {locator:?} did not leave {:?}", browser.current_url().await);
}

/// Checks the page `browser` shows with axe-core, then saves it as `DIR/NAME.png` when
/// `WARD_SCREENSHOTS=DIR` is set.
async fn shot(browser: &Client, name: &str) {
    check_accessible(browser, name).await;
    if let Some(dir) = std::env::var_os("WARD_SCREENSHOTS") {
        let png = browser.screenshot().await.unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// axe-core as its npm package ships it (`crates/ward-server/assets`, `npm ci`); under `CI`, a
/// missing one fails the test.
fn axe() -> Option<&'static str> {
    static AXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(path).ok();
        assert!(axe.is_some() || std::env::var_os("CI").is_none(), "no axe-core at {path}: npm ci it");
        axe
    })
    .as_deref()
}

/// The page `browser` shows breaks no WCAG 2 A or AA rule axe-core checks. The script is
/// handed over WebDriver, which the page's Content-Security-Policy does not govern.
async fn check_accessible(browser: &Client, page: &str) {
    let Some(axe) = axe() else { return };
    browser.execute(axe, vec![]).await.unwrap();
    let run = r#"const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
          .then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`)))
          .catch(e => done([`axe failed: ${e}`]));"#;
    let violations = browser.execute_async(run, vec![]).await.unwrap();
    assert_eq!(violations, serde_json::json!([]), "the {page} page is not accessible");
}

/// 30m of `read` on payments-api, for `reason`, with a ticket.
fn ask_for_payments(reason: &str) -> RequestInput {
    RequestInput {
        resource: "logs:payments-api".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: reason.into(),
        ticket: Some("INC-4312".into()),
        start_at: None,
        breakglass: false,
    }
}

/// alice asks for 30m of `read` on payments-api: the pending request's id.
async fn alices_request(ward: &Ward) -> String {
    let alice = ward.broker.caller("alice").unwrap();
    let ask = ask_for_payments("INC-4312 checkout 500s after the 14:02 deploy");
    ward.broker.create_request(&alice, ask).await.unwrap().id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_chromium_on_sqlite() {
    let Some(driver) = ward_testkit::browser() else { return };
    walk_through(&driver, ward(None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_chromium_on_postgres() {
    let Some(driver) = ward_testkit::browser() else { return };
    let Some(cluster) = ward_testkit::postgres() else { return };
    walk_through(&driver, ward(Some(cluster.fresh_database())).await).await;
}

/// What alice, bob and carol do, page by page.
async fn walk_through(driver: &ward_testkit::TestBrowser, ward: Ward) {
    // alice asks from the form: what would happen first, then the request.
    let alice = ward.browser(driver, false).await;
    ward.sign_in(&alice, "alice").await;
    alice.find(Locator::LinkText("Ask")).await.unwrap().click().await.unwrap();
    let target = alice.wait().for_element(Locator::Id("target")).await.unwrap();
    target.select_by_value("logs:payments-api|read").await.unwrap();
    alice.find(Locator::Id("duration")).await.unwrap().send_keys("30m").await.unwrap();
    let reason = "INC-4312 checkout 500s after the 14:02 deploy";
    alice.find(Locator::Id("reason")).await.unwrap().send_keys(reason).await.unwrap();
    alice.find(Locator::Id("ticket")).await.unwrap().send_keys("INC-4312").await.unwrap();
    // The dry run answers as she types: no button pressed, no page loaded.
    assert_eq!(text_settles_on(&alice, Locator::Id("decision"), "pending").await, "pending");
    assert_eq!(alice.current_url().await.unwrap().path(), "/ui/ask");
    click_and_leave(&alice, Locator::Css("button[value=check]")).await;
    let decision = text_settles_on(&alice, Locator::Id("decision"), "pending").await;
    assert_eq!(decision, "pending", "and without script, the button");
    shot(&alice, "ask").await;
    alice.find(Locator::Css("button[value=ask]")).await.unwrap().click().await.unwrap();
    let state = alice.wait().for_element(Locator::Id("state")).await.unwrap().text().await.unwrap();
    assert_eq!(state, "pending");
    let id = alice.current_url().await.unwrap().path().trim_start_matches("/ui/requests/").to_owned();
    assert!(id.starts_with("req_"), "{id}");

    // bob, a payments lead, on his phone.
    let bob = ward.browser(driver, true).await;
    ward.sign_in(&bob, "bob").await;
    shot(&bob, "home").await;
    bob.goto(&format!("{}/ui/inbox", ward.url)).await.unwrap();
    let card = bob.find(Locator::Id(&id)).await.expect("alice's request in bob's inbox");
    let text = card.text().await.unwrap();
    assert!(text.contains("alice asks for read on logs:payments-api"), "{text}");
    assert!(text.contains("INC-4312 checkout 500s"), "{text}");
    shot(&bob, "inbox").await;
    // A request filed while his inbox is open: the page says so, within seconds.
    let second = alices_request(&ward).await;
    let news = bob.find(Locator::Id("inbox-news")).await.unwrap();
    let mut said = String::new();
    for _ in 0..150 {
        said = news.text().await.unwrap();
        if !said.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(said.starts_with("1 new request(s) wait for you."), "{said:?}");
    card.find(Locator::Css("input[name=comment]")).await.unwrap().send_keys("ok for INC-4312").await.unwrap();
    card.find(Locator::Css("button[value=approve]")).await.unwrap().click().await.unwrap();
    // A click sends the form; the page it leads to comes after.
    let state = bob.wait().for_element(Locator::Id("state")).await.unwrap().text().await.unwrap();
    assert_eq!(state, "approved", "one click, decided");
    assert_eq!(bob.current_url().await.unwrap().path(), format!("/ui/requests/{id}"));
    shot(&bob, "request-approved").await;

    // alice: the grant bob approved, with the time it has left.
    alice.find(Locator::LinkText("My grants")).await.unwrap().click().await.unwrap();
    let live = alice.wait().for_element(Locator::Css("article.grant")).await.unwrap().text().await.unwrap();
    assert!(live.contains("read on logs:payments-api") && live.contains("left)"), "{live}");
    // It counts down, to the second, without a reload.
    let ends = alice.find(Locator::Css("article.grant .ends")).await.unwrap();
    let first = ends.text().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let later = ends.text().await.unwrap();
    assert!(later != first && later.contains("left)"), "{first} then {later}");
    shot(&alice, "grants").await;
    alice.find(Locator::Css("article.grant h2 a")).await.unwrap().click().await.unwrap();
    let checkpoints =
        alice.wait().for_element(Locator::Id("checkpoints")).await.unwrap().text().await.unwrap();
    assert!(checkpoints.contains("Justified") && checkpoints.contains("pass"), "{checkpoints}");
    shot(&alice, "grant").await;

    // Her logs, redacted, with what was redacted counted.
    alice.find(Locator::LinkText("Logs")).await.unwrap().click().await.unwrap();
    alice.wait().for_element(Locator::LinkText("logs:payments-api")).await.unwrap().click().await.unwrap();
    alice.wait().for_element(Locator::Id("pattern")).await.unwrap().send_keys("customer").await.unwrap();
    alice.find(Locator::Css("#search button")).await.unwrap().click().await.unwrap();
    let summary = alice.wait().for_element(Locator::Id("summary")).await.unwrap().text().await.unwrap();
    assert!(summary.contains("values redacted: "), "{summary}");
    let found = alice.find(Locator::Css("#results ol")).await.unwrap().text().await.unwrap();
    assert!(found.contains("checkout 500") && !found.contains("omar.haddad@example.org"), "{found}");
    shot(&alice, "logs").await;
    // Followed live, until the grant ends: then the page says so.
    alice.find(Locator::Id("follow")).await.unwrap().click().await.unwrap();
    let tail_summary = alice.wait().for_element(Locator::Id("tail-summary")).await.unwrap();
    for _ in 0..100 {
        if tail_summary.text().await.unwrap().starts_with("Following") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let tail = alice.find(Locator::Id("tail-lines")).await.unwrap().text().await.unwrap();
    assert!(tail.contains("checkout 500") && !tail.contains("omar.haddad@example.org"), "{tail}");
    shot(&alice, "logs-live").await;
    let listing = ward_service::broker::GrantListing { mine: true, limit: 10, ..Default::default() };
    let grants = ward.broker.list_grants(&ward.broker.caller("alice").unwrap(), listing).await.unwrap();
    ward.broker
        .release(&ward.broker.caller("alice").unwrap(), &grants.items[0].id.to_string())
        .await
        .unwrap();
    let end = alice.find(Locator::Id("tail-end")).await.unwrap();
    let mut said = String::new();
    for _ in 0..100 {
        said = end.text().await.unwrap();
        if !said.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(said.starts_with("The live tail ended: grant"), "{said:?}");

    // Her own request has no approve button, and her inbox is empty.
    alice.goto(&format!("{}/ui/requests/{second}", ward.url)).await.unwrap();
    let why = alice.find(Locator::Id("not-yours")).await.unwrap().text().await.unwrap();
    assert!(why.contains("your own request"), "{why}");
    assert!(alice.find(Locator::Css("button[value=approve]")).await.is_err(), "no approve button");
    shot(&alice, "own-request").await;
    alice.goto(&format!("{}/ui/inbox", ward.url)).await.unwrap();
    assert!(alice.find(Locator::Id("empty")).await.is_ok());

    // Signing out ends the session: the next page is the sign-in again.
    alice.goto(&format!("{}/ui/", ward.url)).await.unwrap();
    alice.find(Locator::Css("form[action='/ui/logout'] button")).await.unwrap().click().await.unwrap();
    alice.wait().for_url(&format!("{}/ui/signed-out", ward.url).parse().unwrap()).await.unwrap();
    alice.goto(&format!("{}/ui/inbox", ward.url)).await.unwrap();
    assert_eq!(alice.current_url().await.unwrap().path(), "/ui/login");

    // carol, an auditor, browses the log and proves an event is in it.
    ward.broker.sign_checkpoint(true).await.unwrap();
    let carol = ward.browser(driver, false).await;
    ward.sign_in(&carol, "carol").await;
    carol.find(Locator::LinkText("Audit")).await.unwrap().click().await.unwrap();
    carol.wait().for_element(Locator::Id("events")).await.unwrap();
    carol.find(Locator::Id("type")).await.unwrap().select_by_value("approval.granted").await.unwrap();
    carol.find(Locator::Css(".filters button")).await.unwrap().click().await.unwrap();
    carol
        .wait()
        .for_url(
            &format!("{}/ui/audit?type=approval.granted&actor=&resource=&request=&grant=", ward.url)
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    let rows = carol.find(Locator::Css("#events tbody")).await.unwrap().text().await.unwrap();
    assert!(rows.contains("approval.granted") && rows.contains("bob"), "{rows}");
    shot(&carol, "audit").await;
    carol.find(Locator::Css("#events tbody a")).await.unwrap().click().await.unwrap();
    carol.wait().for_element(Locator::Id("hash")).await.unwrap();
    carol.find(Locator::LinkText("Prove it is in the log")).await.unwrap().click().await.unwrap();
    let proof = carol.wait().for_element(Locator::Id("proof")).await.unwrap().text().await.unwrap();
    assert!(proof.contains("tree of"), "{proof}");
    shot(&carol, "event").await;

    // carol moves a finding on: a request of alice's whose reason says nothing.
    let weak = RequestInput { reason: "fix".into(), ticket: None, ..ask_for_payments("fix") };
    ward.broker.create_request(&ward.broker.caller("alice").unwrap(), weak).await.unwrap();
    let findings = ward_monitor::Findings::new(ward.broker.clone());
    let since = ward.broker.now() - jiff::SignedDuration::from_hours(1);
    findings.run(&ward.broker.caller("admin").unwrap(), since, None).await.unwrap();
    carol.find(Locator::LinkText("Findings")).await.unwrap().click().await.unwrap();
    let rows = carol.wait().for_element(Locator::Css("#findings tbody")).await.unwrap().text().await.unwrap();
    assert!(rows.contains("weak-justification") && rows.contains("alice"), "{rows}");
    shot(&carol, "findings").await;
    carol.find(Locator::Css("#findings tbody a")).await.unwrap().click().await.unwrap();
    carol
        .wait()
        .for_element(Locator::Id("comment"))
        .await
        .unwrap()
        .send_keys("asked alice for the incident")
        .await
        .unwrap();
    carol.find(Locator::Css("button[value=acknowledge]")).await.unwrap().click().await.unwrap();
    carol.wait().for_element(Locator::Id("moved")).await.unwrap();
    let state = carol.find(Locator::Id("state")).await.unwrap().text().await.unwrap();
    assert_eq!(state, "acknowledged");
    shot(&carol, "finding").await;
    // Is the log whole? Verified from the page.
    carol.goto(&format!("{}/ui/audit/integrity", ward.url)).await.unwrap();
    carol.wait().for_element(Locator::Css("#verify button")).await.unwrap().click().await.unwrap();
    let verified = carol.wait().for_element(Locator::Id("verified")).await.unwrap().text().await.unwrap();
    assert!(verified.starts_with("Valid"), "{verified}");
    shot(&carol, "integrity").await;
    // The admin pages: the policies in force, with their test results.
    carol.goto(&format!("{}/ui/admin/policies", ward.url)).await.unwrap();
    carol.wait().for_element(Locator::Id("tests")).await.unwrap();
    shot(&carol, "policies").await;
    carol.goto(&format!("{}/ui/insights", ward.url)).await.unwrap();
    carol.wait().for_element(Locator::Id("roles")).await.unwrap();
    shot(&carol, "insights").await;
    for page in ["/ui/reports", "/ui/admin/resources", "/ui/admin/tokens"] {
        carol.goto(&format!("{}{page}", ward.url)).await.unwrap();
        carol.wait().for_element(Locator::Css("h1")).await.unwrap();
        check_accessible(&carol, page).await;
    }

    bob.close().await.unwrap();
    alice.close().await.unwrap();
    carol.close().await.unwrap();
}
