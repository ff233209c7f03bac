//! What can fail in the store, and where: opening, migrating, or one named operation.
//!
//! Every variant says which step failed. The database's own error is kept as the `source`,
//! and no variant carries the connection URL, which may hold a password.

use std::fmt;
use std::time::Duration;

use crate::Backend;

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no backend the store knows (`sqlite:` or `postgres:`/`postgresql:`).
    #[error("unsupported database URL scheme {scheme:?}: expected sqlite: or postgres:")]
    UnsupportedScheme {
        /// The scheme found, up to the first `:` (never the rest of the URL).
        scheme: String,
    },
    /// The URL was recognised but its options could not be read.
    #[error("invalid {backend} database URL")]
    InvalidUrl {
        /// The backend the URL names.
        backend: Backend,
        /// Why the driver refused it.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the {backend} database")]
    Open {
        /// The backend being opened.
        backend: Backend,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The embedded migrations could not be applied.
    #[error("cannot apply the {backend} migrations")]
    Migrate {
        /// The backend being migrated.
        backend: Backend,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store operation {op} failed")]
    Query {
        /// The operation that ran the query.
        op: Operation,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query did not finish within the store's query timeout.
    #[error("store operation {op} did not finish within {after:?}")]
    Timeout {
        /// The operation that ran the query.
        op: Operation,
        /// The deadline that passed.
        after: Duration,
    },
    /// A text value holds a NUL character, which PostgreSQL's `text` cannot store; refused
    /// on SQLite as well, so that both backends accept the same values.
    #[error("{field} contains a NUL character, which the store does not accept")]
    NulCharacter {
        /// Which value.
        field: Field,
    },
    /// A value is larger than the store accepts.
    #[error("{field} is {len} bytes, more than the {max} the store accepts")]
    TooLarge {
        /// Which value.
        field: Field,
        /// Its length in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The domain is hosted already, by this tenant or another (which one is not said).
    #[error("{domain} is already hosted")]
    DomainTaken {
        /// The domain.
        domain: String,
    },
    /// The tenant hosts no such live domain (a domain of another tenant is not found either).
    #[error("{domain} is not a hosted domain")]
    DomainNotFound {
        /// The domain.
        domain: String,
    },
    /// The policy of a domain changed between reading it and writing a new version (another
    /// writer, perhaps another replica, added a version first); nothing was written.
    #[error(
        "the policy of {domain} changed meanwhile (version {expected} is no longer current); \
         nothing was written, read it again and retry"
    )]
    VersionConflict {
        /// The domain.
        domain: String,
        /// The version the change was based on.
        expected: i64,
    },
    /// A bulk add was given more domains than one transaction takes.
    #[error("{len} domains in one batch, more than the {max} the store takes at once")]
    BatchTooLarge {
        /// Domains given.
        len: usize,
        /// [`MAX_BATCH`](crate::hosting::bulk::MAX_BATCH).
        max: usize,
    },
    /// A bulk add named one domain twice; nothing was written.
    #[error("{domain} is given twice in one batch")]
    DuplicateInBatch {
        /// The domain.
        domain: String,
    },
    /// A tenant of that name exists.
    #[error("tenant {name:?} exists already")]
    TenantTaken {
        /// The name.
        name: String,
    },
    /// A user of that name exists (names are unique across the install).
    #[error("user {name:?} exists already")]
    UserTaken {
        /// The name.
        name: String,
    },
    /// The tenant named does not exist.
    #[error("tenant {name:?} does not exist")]
    TenantNotFound {
        /// The name.
        name: String,
    },
    /// A value the store refuses for what it says, not for its size.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which value.
        field: Field,
        /// Why.
        reason: &'static str,
    },
    /// A stored value is not one the schema allows (the database was changed by hand).
    #[error("stored {field} value {value:?} is not valid")]
    Corrupt {
        /// Which value.
        field: Field,
        /// What was found (shortened).
        value: String,
    },
}

/// The store operation a [`StoreError::Query`] or [`StoreError::Timeout`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// [`Store::resolver_policy_get`](crate::Store::resolver_policy_get).
    ResolverPolicyGet,
    /// [`Store::resolver_policy_put`](crate::Store::resolver_policy_put).
    ResolverPolicyPut,
    /// [`Store::resolver_policy_touch`](crate::Store::resolver_policy_touch).
    ResolverPolicyTouch,
    /// [`Store::resolver_policy_delete`](crate::Store::resolver_policy_delete).
    ResolverPolicyDelete,
    /// [`Store::resolver_policy_load`](crate::Store::resolver_policy_load).
    ResolverPolicyLoad,
    /// [`Store::resolver_policy_purge_expired`](crate::Store::resolver_policy_purge_expired).
    ResolverPolicyPurgeExpired,
    /// [`Store::tenant_default`](crate::Store::tenant_default).
    TenantDefault,
    /// [`Store::tenant_create`](crate::Store::tenant_create).
    TenantCreate,
    /// [`Store::hosted_domain_add`](crate::Store::hosted_domain_add).
    HostedDomainAdd,
    /// [`Store::hosted_domains_add_many`](crate::Store::hosted_domains_add_many).
    HostedDomainsAddMany,
    /// [`Store::hosted_domain_get`](crate::Store::hosted_domain_get).
    HostedDomainGet,
    /// [`Store::hosted_domain_list`](crate::Store::hosted_domain_list).
    HostedDomainList,
    /// [`Store::hosted_domain_set_options`](crate::Store::hosted_domain_set_options).
    HostedDomainSetOptions,
    /// [`Store::policy_version_add`](crate::Store::policy_version_add).
    PolicyVersionAdd,
    /// [`Store::policy_versions`](crate::Store::policy_versions).
    PolicyVersions,
    /// [`Store::policy_version_current`](crate::Store::policy_version_current).
    PolicyVersionCurrent,
    /// [`Store::hosted_domain_finish_removals`](crate::Store::hosted_domain_finish_removals).
    HostedDomainFinishRemovals,
    /// [`Store::hosting_snapshot`](crate::Store::hosting_snapshot).
    HostingSnapshot,
    /// [`Store::certificate_put`](crate::Store::certificate_put).
    CertificatePut,
    /// [`Store::certificate_fail`](crate::Store::certificate_fail).
    CertificateFail,
    /// [`Store::certificate_get`](crate::Store::certificate_get).
    CertificateGet,
    /// [`Store::certificate_list`](crate::Store::certificate_list).
    CertificateList,
    /// [`Store::acme_account_get`](crate::Store::acme_account_get).
    AcmeAccountGet,
    /// [`Store::acme_account_insert`](crate::Store::acme_account_insert).
    AcmeAccountInsert,
    /// [`Store::hosting_changes_since`](crate::Store::hosting_changes_since).
    HostingChangesSince,
    /// [`Store::hosting_served`](crate::Store::hosting_served).
    HostingServed,
    /// [`Store::hosting_changes_prune`](crate::Store::hosting_changes_prune).
    HostingChangesPrune,
    /// [`Store::replica_heartbeat`](crate::Store::replica_heartbeat).
    ReplicaHeartbeat,
    /// [`Store::replica_min_applied`](crate::Store::replica_min_applied).
    ReplicaMinApplied,
    /// [`Store::replica_leave`](crate::Store::replica_leave).
    ReplicaLeave,
    /// [`Store::lease_acquire`](crate::Store::lease_acquire).
    LeaseAcquire,
    /// [`Store::lease_release`](crate::Store::lease_release).
    LeaseRelease,
    /// [`Store::lease_get`](crate::Store::lease_get).
    LeaseGet,
    /// [`Store::certificate_wait`](crate::Store::certificate_wait).
    CertificateWait,
    /// [`Store::certificates_changed_since`](crate::Store::certificates_changed_since).
    CertificatesChangedSince,
    /// [`Store::domain_checks_seed`](crate::Store::domain_checks_seed).
    DomainChecksSeed,
    /// [`Store::domain_checks_due`](crate::Store::domain_checks_due).
    DomainChecksDue,
    /// [`Store::domain_check_claim`](crate::Store::domain_check_claim).
    DomainCheckClaim,
    /// [`Store::domain_check_record_mx`](crate::Store::domain_check_record_mx).
    DomainCheckRecordMx,
    /// [`Store::domain_check_record_txt`](crate::Store::domain_check_record_txt).
    DomainCheckRecordTxt,
    /// [`Store::domain_check_get`](crate::Store::domain_check_get).
    DomainCheckGet,
    /// [`Store::domain_set_own_sts_txt`](crate::Store::domain_set_own_sts_txt).
    DomainSetOwnStsTxt,
    /// [`Store::policy_fetches_add`](crate::Store::policy_fetches_add).
    PolicyFetchesAdd,
    /// [`Store::policy_fetches_since`](crate::Store::policy_fetches_since).
    PolicyFetchesSince,
    /// [`Store::policy_fetches_prune`](crate::Store::policy_fetches_prune).
    PolicyFetchesPrune,
    /// [`Store::reports_ingest`](crate::Store::reports_ingest).
    ReportsIngest,
    /// [`Store::reports_prune`](crate::Store::reports_prune).
    ReportsPrune,
    /// [`Store::reports_stored_totals`](crate::Store::reports_stored_totals).
    ReportsStoredTotals,
    /// [`Store::reports_summary`](crate::Store::reports_summary).
    ReportsSummary,
    /// [`Store::quarantine_list`](crate::Store::quarantine_list).
    QuarantineList,
    /// [`Store::quarantine_get`](crate::Store::quarantine_get).
    QuarantineGet,
    /// [`Store::tenant_list`](crate::Store::tenant_list).
    TenantList,
    /// [`Store::tenant_by_name`](crate::Store::tenant_by_name).
    TenantByName,
    /// [`Store::user_create`](crate::Store::user_create).
    UserCreate,
    /// [`Store::user_by_name`](crate::Store::user_by_name).
    UserByName,
    /// [`Store::user_list`](crate::Store::user_list).
    UserList,
    /// [`Store::user_set_disabled`](crate::Store::user_set_disabled).
    UserSetDisabled,
    /// [`Store::api_token_create`](crate::Store::api_token_create).
    ApiTokenCreate,
    /// [`Store::api_token_list`](crate::Store::api_token_list).
    ApiTokenList,
    /// [`Store::api_token_lookup`](crate::Store::api_token_lookup).
    ApiTokenLookup,
    /// [`Store::api_token_revoke`](crate::Store::api_token_revoke).
    ApiTokenRevoke,
    /// [`Store::api_token_touch`](crate::Store::api_token_touch).
    ApiTokenTouch,
    /// [`Store::login_failure_record`](crate::Store::login_failure_record).
    LoginFailureRecord,
    /// [`Store::login_failure_count`](crate::Store::login_failure_count).
    LoginFailureCount,
    /// [`Store::login_failure_clear`](crate::Store::login_failure_clear).
    LoginFailureClear,
    /// [`Store::login_failure_prune`](crate::Store::login_failure_prune).
    LoginFailurePrune,
    /// [`Store::check_run_add`](crate::Store::check_run_add).
    CheckRunAdd,
    /// [`Store::check_run_list`](crate::Store::check_run_list).
    CheckRunList,
    /// [`Store::metrics_snapshot`](crate::Store::metrics_snapshot).
    MetricsSnapshot,
    /// [`Store::check_run_verdicts`](crate::Store::check_run_verdicts).
    CheckRunVerdicts,
    /// [`Store::alerts_sync`](crate::Store::alerts_sync).
    AlertsSync,
    /// [`Store::alert_list`](crate::Store::alert_list).
    AlertList,
    /// [`Store::alert_deliveries_due`](crate::Store::alert_deliveries_due).
    AlertDeliveriesDue,
    /// [`Store::alert_deliveries_of`](crate::Store::alert_deliveries_of).
    AlertDeliveriesOf,
    /// [`Store::alert_delivery_claim`](crate::Store::alert_delivery_claim).
    AlertDeliveryClaim,
    /// [`Store::alert_delivery_done`](crate::Store::alert_delivery_done).
    AlertDeliveryDone,
    /// [`Store::alert_delivery_failed`](crate::Store::alert_delivery_failed).
    AlertDeliveryFailed,
    /// [`Store::alert_rounds_seed`](crate::Store::alert_rounds_seed).
    AlertRoundsSeed,
    /// [`Store::alert_rounds_due`](crate::Store::alert_rounds_due).
    AlertRoundsDue,
    /// [`Store::alert_round_claim`](crate::Store::alert_round_claim).
    AlertRoundClaim,
    /// [`Store::reports_list`](crate::Store::reports_list).
    ReportsList,
    /// [`Store::report_raw`](crate::Store::report_raw).
    ReportRaw,
    /// [`Store::reported_policies`](crate::Store::reported_policies).
    ReportedPolicies,
    /// [`Store::failure_details`](crate::Store::failure_details).
    FailureDetails,
    /// [`Store::web_session_create`](crate::Store::web_session_create).
    WebSessionCreate,
    /// [`Store::web_session_lookup`](crate::Store::web_session_lookup).
    WebSessionLookup,
    /// [`Store::web_session_touch`](crate::Store::web_session_touch).
    WebSessionTouch,
    /// [`Store::web_session_delete`](crate::Store::web_session_delete).
    WebSessionDelete,
    /// [`Store::web_session_prune`](crate::Store::web_session_prune).
    WebSessionPrune,
}

impl Operation {
    /// The operation's name, as the method is called.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResolverPolicyGet => "resolver_policy_get",
            Self::ResolverPolicyPut => "resolver_policy_put",
            Self::ResolverPolicyTouch => "resolver_policy_touch",
            Self::ResolverPolicyDelete => "resolver_policy_delete",
            Self::ResolverPolicyLoad => "resolver_policy_load",
            Self::ResolverPolicyPurgeExpired => "resolver_policy_purge_expired",
            Self::TenantDefault => "tenant_default",
            Self::TenantCreate => "tenant_create",
            Self::HostedDomainAdd => "hosted_domain_add",
            Self::HostedDomainsAddMany => "hosted_domains_add_many",
            Self::HostedDomainGet => "hosted_domain_get",
            Self::HostedDomainList => "hosted_domain_list",
            Self::HostedDomainSetOptions => "hosted_domain_set_options",
            Self::PolicyVersionAdd => "policy_version_add",
            Self::PolicyVersions => "policy_versions",
            Self::PolicyVersionCurrent => "policy_version_current",
            Self::HostedDomainFinishRemovals => "hosted_domain_finish_removals",
            Self::HostingSnapshot => "hosting_snapshot",
            Self::CertificatePut => "certificate_put",
            Self::CertificateFail => "certificate_fail",
            Self::CertificateGet => "certificate_get",
            Self::CertificateList => "certificate_list",
            Self::AcmeAccountGet => "acme_account_get",
            Self::AcmeAccountInsert => "acme_account_insert",
            Self::HostingChangesSince => "hosting_changes_since",
            Self::HostingServed => "hosting_served",
            Self::HostingChangesPrune => "hosting_changes_prune",
            Self::ReplicaHeartbeat => "replica_heartbeat",
            Self::ReplicaMinApplied => "replica_min_applied",
            Self::ReplicaLeave => "replica_leave",
            Self::LeaseAcquire => "lease_acquire",
            Self::LeaseRelease => "lease_release",
            Self::LeaseGet => "lease_get",
            Self::CertificateWait => "certificate_wait",
            Self::CertificatesChangedSince => "certificates_changed_since",
            Self::DomainChecksSeed => "domain_checks_seed",
            Self::DomainChecksDue => "domain_checks_due",
            Self::DomainCheckClaim => "domain_check_claim",
            Self::DomainCheckRecordMx => "domain_check_record_mx",
            Self::DomainCheckRecordTxt => "domain_check_record_txt",
            Self::DomainCheckGet => "domain_check_get",
            Self::DomainSetOwnStsTxt => "domain_set_own_sts_txt",
            Self::PolicyFetchesAdd => "policy_fetches_add",
            Self::PolicyFetchesSince => "policy_fetches_since",
            Self::PolicyFetchesPrune => "policy_fetches_prune",
            Self::ReportsIngest => "reports_ingest",
            Self::ReportsPrune => "reports_prune",
            Self::ReportsStoredTotals => "reports_stored_totals",
            Self::ReportsSummary => "reports_summary",
            Self::QuarantineList => "quarantine_list",
            Self::QuarantineGet => "quarantine_get",
            Self::TenantList => "tenant_list",
            Self::TenantByName => "tenant_by_name",
            Self::UserCreate => "user_create",
            Self::UserByName => "user_by_name",
            Self::UserList => "user_list",
            Self::UserSetDisabled => "user_set_disabled",
            Self::ApiTokenCreate => "api_token_create",
            Self::ApiTokenList => "api_token_list",
            Self::ApiTokenLookup => "api_token_lookup",
            Self::ApiTokenRevoke => "api_token_revoke",
            Self::ApiTokenTouch => "api_token_touch",
            Self::LoginFailureRecord => "login_failure_record",
            Self::LoginFailureCount => "login_failure_count",
            Self::LoginFailureClear => "login_failure_clear",
            Self::LoginFailurePrune => "login_failure_prune",
            Self::CheckRunAdd => "check_run_add",
            Self::CheckRunList => "check_run_list",
            Self::MetricsSnapshot => "metrics_snapshot",
            Self::CheckRunVerdicts => "check_run_verdicts",
            Self::AlertsSync => "alerts_sync",
            Self::AlertList => "alert_list",
            Self::AlertDeliveriesDue => "alert_deliveries_due",
            Self::AlertDeliveriesOf => "alert_deliveries_of",
            Self::AlertDeliveryClaim => "alert_delivery_claim",
            Self::AlertDeliveryDone => "alert_delivery_done",
            Self::AlertDeliveryFailed => "alert_delivery_failed",
            Self::AlertRoundsSeed => "alert_rounds_seed",
            Self::AlertRoundsDue => "alert_rounds_due",
            Self::AlertRoundClaim => "alert_round_claim",
            Self::ReportsList => "reports_list",
            Self::ReportRaw => "report_raw",
            Self::ReportedPolicies => "reported_policies",
            Self::FailureDetails => "failure_details",
            Self::WebSessionCreate => "web_session_create",
            Self::WebSessionLookup => "web_session_lookup",
            Self::WebSessionTouch => "web_session_touch",
            Self::WebSessionDelete => "web_session_delete",
            Self::WebSessionPrune => "web_session_prune",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored value whose size is bounded (see [`StoreError::TooLarge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// A policy domain name.
    Domain,
    /// The `_mta-sts` TXT `id`.
    StsId,
    /// A policy body.
    Policy,
    /// A policy mode.
    Mode,
    /// An `mx` pattern.
    Mx,
    /// Who changed a policy.
    ChangedBy,
    /// Why a policy changed.
    Note,
    /// A tenant's name.
    TenantName,
    /// A TLS-RPT `rua`.
    Rua,
    /// A domain's or certificate's state.
    State,
    /// A certificate chain.
    ChainPem,
    /// A sealed private key.
    PrivateKey,
    /// A certificate's last error.
    LastError,
    /// An ACME directory URL.
    DirectoryUrl,
    /// An ACME contact.
    Contact,
    /// Sealed ACME credentials.
    Credentials,
    /// A lease's name.
    LeaseName,
    /// A lease's holder.
    LeaseHolder,
    /// A scheduler check's outcome or detail.
    CheckDetail,
    /// A fetching network.
    Network,
    /// A user's name.
    UserName,
    /// A stored password hash.
    PasswordHash,
    /// A user's role.
    Role,
    /// An API token's name.
    TokenName,
    /// An API token's shown prefix.
    TokenPrefix,
    /// An API token's digest.
    TokenDigest,
    /// A login throttling key (user name or address).
    LoginKey,
    /// A check run's verdict.
    CheckVerdict,
    /// A check run's findings JSON.
    CheckFindings,
    /// An alert's rule, cause key or summary.
    Alert,
    /// An alert destination's name.
    AlertDestination,
    /// A dashboard session id's digest.
    SessionDigest,
    /// A dashboard session's CSRF token.
    CsrfToken,
}

impl Field {
    /// The field's name, as the column is called.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::StsId => "sts_id",
            Self::Policy => "policy",
            Self::Mode => "mode",
            Self::Mx => "mx",
            Self::ChangedBy => "changed_by",
            Self::Note => "note",
            Self::TenantName => "tenant name",
            Self::Rua => "tlsrpt_rua",
            Self::State => "state",
            Self::ChainPem => "chain_pem",
            Self::PrivateKey => "private key",
            Self::LastError => "last_error",
            Self::DirectoryUrl => "directory_url",
            Self::Contact => "contact",
            Self::Credentials => "credentials",
            Self::LeaseName => "lease name",
            Self::LeaseHolder => "lease holder",
            Self::CheckDetail => "check detail",
            Self::Network => "network",
            Self::UserName => "user name",
            Self::PasswordHash => "password_hash",
            Self::Role => "role",
            Self::TokenName => "token name",
            Self::TokenPrefix => "token prefix",
            Self::TokenDigest => "token digest",
            Self::LoginKey => "login key",
            Self::CheckVerdict => "verdict",
            Self::CheckFindings => "findings",
            Self::Alert => "alert",
            Self::AlertDestination => "alert destination",
            Self::SessionDigest => "session digest",
            Self::CsrfToken => "csrf_token",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
