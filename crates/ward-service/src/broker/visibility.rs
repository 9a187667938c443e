//! Listings and lookups, filtered to what the caller may see.
//!
//! A listing narrows in its query to what the caller may see as far as SQL can tell (their own
//! rows, and those on resources an approve permit's scope admits them to), then asks the policy
//! about each row (`may_approve`: conditions, forbids). Rows come in batches after a cursor, so
//! a page is filled with visible rows however many hidden ones come first; and it says where to
//! continue rather than stopping short in silence.

use std::collections::HashMap;

use ward_store::Visibility;

use super::*;

/// Batches read for one page at most; a page still short after them ends with a cursor.
const SCAN_BATCHES: usize = 10;
/// Rows read per batch, at least.
const MIN_BATCH: u32 = 100;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts (`after`), when there may be more: the last row returned,
    /// or, when a page stops short after reading `SCAN_BATCHES` batches, the last row read.
    pub next: Option<String>,
}

/// `GET /v1/requests`.
#[derive(Debug, Clone, Default)]
pub struct RequestListing {
    pub state: Option<RequestState>,
    /// Only the caller's own.
    pub mine: bool,
    /// Continue after this request (a page's `next`).
    pub after: Option<String>,
    pub limit: u32,
}

/// `GET /v1/grants`.
#[derive(Debug, Clone, Default)]
pub struct GrantListing {
    /// Only active grants.
    pub active: bool,
    /// Only the caller's own.
    pub mine: bool,
    /// Only break-glass grants whose review is pending or overdue.
    pub unreviewed: bool,
    /// Continue after this grant (a page's `next`).
    pub after: Option<String>,
    pub limit: u32,
}

/// Builds one page from rows read in batches, newest first: the caller reads a batch after
/// [`Pager::cursor`] and offers its rows one by one with whether the caller may see each, until
/// the page holds `limit` and one more visible row shows that more exist, the rows run out, or
/// `SCAN_BATCHES` batches were read.
struct Pager<T> {
    limit: usize,
    batch: u32,
    batches_left: usize,
    items: Vec<T>,
    /// The position (time, id) of the last row offered.
    after: Option<(Timestamp, String)>,
    position: fn(&T) -> (Timestamp, String),
}

impl<T> Pager<T> {
    fn new(limit: u32, after: Option<(Timestamp, String)>, position: fn(&T) -> (Timestamp, String)) -> Self {
        let limit = limit.max(1);
        Self {
            limit: limit as usize,
            batch: limit.saturating_add(1).max(MIN_BATCH),
            batches_left: SCAN_BATCHES,
            items: Vec::new(),
            after,
            position,
        }
    }

    /// Where the next batch starts.
    fn cursor(&self) -> Option<(Timestamp, String)> {
        self.after.clone()
    }

    /// The page, once a visible row past a full one shows that more exist.
    fn offer(&mut self, row: T, visible: bool) -> Option<Page<T>> {
        self.after = Some((self.position)(&row));
        if !visible {
            return None;
        }
        if self.items.len() == self.limit {
            let next = self.items.last().map(|item| (self.position)(item).1);
            return Some(Page { items: std::mem::take(&mut self.items), next });
        }
        self.items.push(row);
        None
    }

    /// After a batch of `read` rows: the page, when the rows ran out or the batches did.
    fn batch_done(&mut self, read: usize) -> Option<Page<T>> {
        self.batches_left = self.batches_left.saturating_sub(1);
        let next = if read < self.batch as usize {
            None
        } else if self.batches_left == 0 {
            self.after.as_ref().map(|(_, id)| id.clone())
        } else {
            return None;
        };
        Some(Page { items: std::mem::take(&mut self.items), next })
    }
}

impl Broker {
    pub(super) fn may_see_request(
        &self,
        caller: &Caller,
        request: &AccessRequest,
        policy: &PolicyEngine,
    ) -> bool {
        caller.sees_everything()
            || request.requester == caller.name
            || policy.may_approve(&caller.name, request)
    }

    /// What SQL can narrow a listing to for `caller`: nothing for admins and auditors, else
    /// their own rows and those on the resources they might approve for (when the policies'
    /// scopes name them).
    fn visibility(&self, caller: &Caller) -> Option<Visibility> {
        if caller.sees_everything() {
            return None;
        }
        let resources = self.policy().resources_approvable_by(&caller.name)?;
        Some(Visibility { user: caller.name.clone(), resources: resources.into_iter().collect() })
    }

    pub async fn list_requests(
        &self,
        caller: &Caller,
        listing: RequestListing,
    ) -> Result<Page<AccessRequest>, BrokerError> {
        let after = match &listing.after {
            Some(id) => {
                let cursor =
                    self.store.request(id).await?.ok_or_else(|| {
                        BrokerError::Unacceptable(format!("no request `{id}` to list after"))
                    })?;
                Some((cursor.created_at, cursor.id.0))
            }
            None => None,
        };
        let filter = RequestFilter {
            state: listing.state,
            requester: listing.mine.then(|| caller.name.clone()),
            visible_to: self.visibility(caller),
            ..RequestFilter::default()
        };
        let policy = self.policy();
        let mut pager = Pager::new(listing.limit, after, |r: &AccessRequest| (r.created_at, r.id.0.clone()));
        loop {
            let batch = RequestFilter { after: pager.cursor(), limit: pager.batch, ..filter.clone() };
            let rows = self.store.requests(&batch).await?;
            let read = rows.len();
            for request in rows {
                let visible = self.may_see_request(caller, &request, &policy);
                if let Some(page) = pager.offer(request, visible) {
                    return Ok(page);
                }
            }
            if let Some(page) = pager.batch_done(read) {
                return Ok(page);
            }
        }
    }

    pub async fn get_request(&self, caller: &Caller, id: &str) -> Result<AccessRequest, BrokerError> {
        let request = self.load_request(id).await?;
        if self.may_see_request(caller, &request, &self.policy()) {
            Ok(request)
        } else {
            Err(BrokerError::NotFound(format!("no request `{id}`")))
        }
    }

    pub(super) async fn may_see_grant(&self, caller: &Caller, grant: &Grant) -> Result<bool, BrokerError> {
        if caller.sees_everything() || grant.principal == caller.name {
            return Ok(true);
        }
        let request = self.load_request(grant.request_id.as_str()).await?;
        Ok(self.policy().may_approve(&caller.name, &request))
    }

    pub async fn list_grants(
        &self,
        caller: &Caller,
        listing: GrantListing,
    ) -> Result<Page<Grant>, BrokerError> {
        let after = match &listing.after {
            Some(id) => {
                let cursor = self
                    .store
                    .grant(id)
                    .await?
                    .ok_or_else(|| BrokerError::Unacceptable(format!("no grant `{id}` to list after")))?;
                Some((cursor.starts_at, cursor.id.0))
            }
            None => None,
        };
        let filter = GrantFilter {
            states: if listing.active { vec![GrantState::Active] } else { Vec::new() },
            principal: listing.mine.then(|| caller.name.clone()),
            review_states: if listing.unreviewed {
                vec![ReviewState::Pending, ReviewState::Overdue]
            } else {
                Vec::new()
            },
            visible_to: self.visibility(caller),
            ..GrantFilter::default()
        };
        let mut pager = Pager::new(listing.limit, after, |g: &Grant| (g.starts_at, g.id.0.clone()));
        let policy = self.policy();
        loop {
            let batch = GrantFilter { after: pager.cursor(), limit: pager.batch, ..filter.clone() };
            let rows = self.store.grants(&batch).await?;
            let read = rows.len();
            // Whether the caller may approve such access decides for others' grants: their
            // requests are read at once, not one query per grant.
            let others: Vec<String> = rows
                .iter()
                .filter(|g| !caller.sees_everything() && g.principal != caller.name)
                .map(|g| g.request_id.to_string())
                .collect();
            let requests: HashMap<String, AccessRequest> = if others.is_empty() {
                HashMap::new()
            } else {
                let found = self.store.requests_by_id(&others).await?;
                found.into_iter().map(|r| (r.id.to_string(), r)).collect()
            };
            for mut grant in rows {
                self.with_uses_seen_here(&mut grant);
                let visible = caller.sees_everything()
                    || grant.principal == caller.name
                    || requests
                        .get(grant.request_id.as_str())
                        .is_some_and(|request| policy.may_approve(&caller.name, request));
                if let Some(page) = pager.offer(grant, visible) {
                    return Ok(page);
                }
            }
            if let Some(page) = pager.batch_done(read) {
                return Ok(page);
            }
        }
    }

    pub async fn get_grant(&self, caller: &Caller, id: &str) -> Result<Grant, BrokerError> {
        let grant = self.load_grant(id).await?;
        if self.may_see_grant(caller, &grant).await? {
            Ok(grant)
        } else {
            Err(BrokerError::NotFound(format!("no grant `{id}`")))
        }
    }

    /// Audit events: everyone's for auditors and admins, otherwise those the caller took part in.
    pub async fn events(
        &self,
        caller: &Caller,
        mut filter: EventFilter,
    ) -> Result<Vec<AuditEvent>, BrokerError> {
        if !caller.sees_everything() {
            filter.involving = Some(caller.name.clone());
        }
        Ok(self.store.events(&filter).await?)
    }

    /// Every event matching `filter` that the caller may see, oldest first, in pages of
    /// `page_size` read ahead of the consumer (see [`crate::export::read_ahead`]).
    pub fn event_pages(
        self: &Arc<Self>,
        caller: &Caller,
        filter: EventFilter,
        page_size: u32,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<AuditEvent>, BrokerError>> {
        let broker = self.clone();
        let caller = caller.clone();
        crate::export::read_ahead(page_size, move |after_seq| {
            let broker = broker.clone();
            let caller = caller.clone();
            let filter = EventFilter { after_seq, limit: page_size, ..filter.clone() };
            async move { broker.events(&caller, filter).await }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type Row = (Timestamp, String);

    /// A listing of `n` rows, newest first, two per second (the id breaks ties), read through
    /// pages of `limit` as the broker reads them, following each page's `next`; `visible` says
    /// which rows (by index) the caller may see.
    fn pages(n: usize, limit: u32, visible: impl Fn(usize) -> bool) -> Vec<Page<Row>> {
        let rows: Vec<Row> = (0..n)
            .map(|i| (Timestamp::from_second(((n - i) / 2) as i64).unwrap(), format!("{:08}", n - i)))
            .collect();
        let index = |row: &Row| rows.iter().position(|r| r == row).unwrap();
        let mut pages = Vec::new();
        let mut after: Option<Row> = None;
        loop {
            let mut pager = Pager::new(limit, after.clone(), |row: &Row| row.clone());
            let page = 'page: loop {
                let start = pager.cursor().map_or(0, |c| index(&c) + 1);
                let batch: Vec<Row> = rows[start..].iter().take(pager.batch as usize).cloned().collect();
                let read = batch.len();
                for row in batch {
                    let shown = visible(index(&row));
                    if let Some(page) = pager.offer(row, shown) {
                        break 'page page;
                    }
                }
                if let Some(page) = pager.batch_done(read) {
                    break page;
                }
            };
            after = page.next.as_ref().map(|id| rows.iter().find(|r| &r.1 == id).unwrap().clone());
            pages.push(page);
            if after.is_none() {
                return pages;
            }
        }
    }

    fn seen(pages: &[Page<Row>]) -> Vec<String> {
        pages.iter().flat_map(|p| p.items.iter().map(|r| r.1.clone())).collect()
    }

    fn expected(n: usize, visible: impl Fn(usize) -> bool) -> Vec<String> {
        (0..n).filter(|&i| visible(i)).map(|i| format!("{:08}", n - i)).collect()
    }

    #[test]
    fn pages_are_filled_with_visible_rows_each_once_in_order() {
        let visible = |i: usize| i % 7 == 3;
        let pages = pages(1000, 5, visible);
        assert_eq!(seen(&pages), expected(1000, visible));
        assert!(pages[..pages.len() - 1].iter().all(|p| p.items.len() == 5), "full pages until the last");
        // Exactly a page's worth, and nothing after it: no cursor to a page that would be empty.
        let pages = super::tests::pages(10, 5, |i| i < 5);
        assert_eq!((pages.len(), pages[0].next.clone()), (1, None));
    }

    #[test]
    fn hidden_rows_past_the_reading_budget_end_a_short_page_with_a_cursor() {
        // The one visible row sits behind more hidden rows than a page reads.
        let n = (SCAN_BATCHES * MIN_BATCH as usize) * 3 + 10;
        let visible = |i: usize| i == n - 5;
        let pages = pages(n, 5, visible);
        assert!(pages[0].items.is_empty() && pages[0].next.is_some(), "short, and says where to go on");
        assert_eq!(seen(&pages), expected(n, visible));
    }
}
