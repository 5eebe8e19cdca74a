-- POST the benchmark body to /v1/requests (the same JSON for Signoff and the echo baseline).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Raise the expense approval limit","description":"Finance asked for 5000 without approval","proposed_action":{"type":"policy_update","changes":{"max_amount_without_approval":5000,"approval_chain":["manager","finance","cfo"]}},"expires_in":"24h"}'
