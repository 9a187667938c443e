//! Listings and lookups, filtered to what the caller may see.

use super::*;

impl Broker {
    fn may_see_request(&self, caller: &Caller, request: &AccessRequest, policy: &PolicyEngine) -> bool {
        caller.sees_everything()
            || request.requester == caller.name
            || policy.may_approve(&caller.name, request)
    }

    pub async fn list_requests(
        &self,
        caller: &Caller,
        state: Option<RequestState>,
        mine: bool,
        limit: u32,
    ) -> Result<Vec<AccessRequest>, BrokerError> {
        let filter = RequestFilter { state, requester: mine.then(|| caller.name.clone()), limit };
        let policy = self.policy();
        let requests = self.store.requests(&filter).await?;
        Ok(requests.into_iter().filter(|r| self.may_see_request(caller, r, &policy)).collect())
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
        active_only: bool,
        mine: bool,
        unreviewed: bool,
        limit: u32,
    ) -> Result<Vec<Grant>, BrokerError> {
        let states = if active_only { vec![GrantState::Active] } else { Vec::new() };
        let review_states =
            if unreviewed { vec![ReviewState::Pending, ReviewState::Overdue] } else { Vec::new() };
        let filter = GrantFilter {
            states,
            principal: mine.then(|| caller.name.clone()),
            review_states,
            limit,
            ..GrantFilter::default()
        };
        let mut visible = Vec::new();
        for grant in self.store.grants(&filter).await? {
            if self.may_see_grant(caller, &grant).await? {
                visible.push(grant);
            }
        }
        Ok(visible)
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
