//! The debug-log gateway through the broker: what a read puts on record, how long it may run,
//! how many run at once. The quickstart's log files are read (the backend does not matter: on
//! SQLite).

use std::collections::BTreeSet;

use ward_service::broker::LogQuery;

use super::*;

/// The `<email:…>` pseudonyms in `text`.
fn emails(text: &str) -> BTreeSet<String> {
    let pseudonym = regex::Regex::new(r"<email:[0-9a-f]+>").unwrap();
    pseudonym.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

/// Searching `a@x.com|b@y.com|…` and reading one's own `access.used` event must not map each
/// guessed value to the pseudonym it has in the lines: the pattern is recorded under a key of
/// the audit log's own, not the grant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_pattern_on_record_links_no_value_to_its_pseudonym() {
    let w = World::new(sqlite().await.unwrap()).await;
    w.granted().await;
    let alice = w.who("alice");
    let guesses = "jane.doe@example.com|omar.haddad@example.org|nobody@example.net";
    let query = LogQuery { pattern: Some(guesses.into()), ..LogQuery::default() };
    w.broker.search_logs(&alice, "logs:payments-api", query).await.unwrap();
    let everything = w.broker.search_logs(&alice, "logs:payments-api", LogQuery::default()).await.unwrap();
    let text: Vec<&str> = everything.lines.iter().map(|l| l.text.as_str()).collect();
    let in_lines = emails(&text.join("\n"));
    assert!(in_lines.len() >= 2, "jane's and omar's: {in_lines:?}");

    let filter = EventFilter { event_type: Some(EventType::AccessUsed), limit: 100, ..Default::default() };
    let own = w.broker.events(&alice, filter).await.unwrap();
    let recorded = own.iter().find_map(|e| e.details["pattern"].as_str()).expect("the pattern is on record");
    let on_record = emails(recorded);
    assert_eq!(on_record.len(), 3, "every guessed value is redacted on record: {recorded}");
    assert!(on_record.is_disjoint(&in_lines), "{recorded} names pseudonyms of the lines: {in_lines:?}");
    assert!(!recorded.contains("jane.doe"), "{recorded}");
}
