-- The dashboard's per-domain reads over many reports (issue 9): a domain's reports, the
-- policies as reported and the failure details start from report_policies by policy
-- domain; the report list is newest range first. Without these, a domain page scans every
-- report row of the install.
CREATE INDEX report_policies_domain ON report_policies (policy_domain, report_id);
CREATE INDEX reports_begin ON reports (begin_at, id);
