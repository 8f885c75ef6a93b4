package asavie

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/simbulk/simbulk/providers"
)

// Check takes one look at accepted work: a GET of the handle, which is the
// StatusUrl Asavie returned (or, for a SIM found still being created after
// a 409, the SIM resource itself). Accepted means not finished yet. A
// failed look (429, 5xx, timeout) is a retryable Failed: the pipeline looks
// again; a request Asavie reports as failed is a permanent Failed.
func (c *Client) Check(ctx context.Context, o providers.Order, handle string) providers.Outcome {
	target, err := c.resolve(handle)
	if err != nil {
		return providers.Outcome{Status: providers.Failed, Err: &providers.Error{
			Code: providers.CodeMalformed, Message: fmt.Sprintf("cannot follow handle %q: %v", handle, err),
		}}
	}
	resp, err := c.send(ctx, http.MethodGet, target, nil)
	if err != nil {
		return readFailure(err)
	}
	a, perr := readAnswer(resp, "status answer", false, c.maxRetryAfter)
	var st RequestStatus
	var dataErr error
	if a.envelope && a.hasData() {
		dataErr = json.Unmarshal(a.Data, &st)
	}
	res := map[string]string{}
	if isStatusURL(handle) {
		res["status_url"] = handle
	}
	if perr != nil {
		switch {
		case dataErr == nil && normStatus(st.Status) == StatusFailed:
			// The look succeeded; the request it reports did not. Asking
			// again will not change that.
			perr.Retryable, perr.MaybeApplied, perr.RetryAfter = false, false, 0
			return providers.Outcome{Status: providers.Failed, Result: res, Err: perr}
		case a.status == http.StatusNotFound && isStatusURL(handle):
			return c.checkBySIM(ctx, o, handle, perr)
		}
		return providers.Outcome{Status: providers.Failed, Result: res, Err: perr}
	}
	if dataErr != nil || !a.hasData() {
		if dataErr == nil {
			dataErr = fmt.Errorf("no Data")
		}
		e := providers.MalformedError(resp.Status, "status answer", dataErr)
		e.MaybeApplied = false
		return providers.Outcome{Status: providers.Failed, Result: res, Err: e}
	}
	if st.Status == "" {
		// A SIM resource, not a request status.
		var card SIMCard
		if err := json.Unmarshal(a.Data, &card); err != nil || card.CLI == "" {
			e := providers.MalformedError(resp.Status, "SIM answer", fmt.Errorf("neither a request status nor a SIM: %v", err))
			e.MaybeApplied = false
			return providers.Outcome{Status: providers.Failed, Err: e}
		}
		return outcomeOfSIM(card, handle, "already existed")
	}
	switch normStatus(st.Status) {
	case StatusPending:
		return providers.Outcome{Status: providers.Accepted, Handle: handle, Result: res}
	case StatusComplete:
		if st.SIMCard != nil {
			res = mergeResult(res, cardResult(*st.SIMCard))
		} else {
			res["cli"] = strings.TrimSpace(o.CLI)
		}
		if st.ID != "" {
			res["request_id"] = st.ID
		}
		return providers.Outcome{Status: providers.Succeeded, Result: res}
	case StatusFailed:
		return providers.Outcome{Status: providers.Failed, Result: res, Err: &providers.Error{
			Code: providers.CodeRejected, Message: "Asavie reports the request failed, without a reason", HTTPStatus: a.status,
		}}
	}
	e := providers.MalformedError(resp.Status, "status answer", fmt.Errorf("unknown Status %.40q", st.Status))
	e.MaybeApplied = false
	return providers.Outcome{Status: providers.Failed, Result: res, Err: e}
}

// checkBySIM answers for a StatusUrl Asavie no longer knows (status
// records do not live forever; a resume may come days later) by looking at
// the SIM itself.
func (c *Client) checkBySIM(ctx context.Context, o providers.Order, handle string, notFound *providers.Error) providers.Outcome {
	account, cli := strings.TrimSpace(o.Fields["account"]), strings.TrimSpace(o.CLI)
	res := map[string]string{"status_url": handle}
	if account == "" || cli == "" {
		return providers.Outcome{Status: providers.Failed, Result: res, Err: notFound}
	}
	card, found, err := c.fetchSIM(ctx, account, cli)
	switch {
	case err != nil:
		return readFailure(err)
	case !found:
		e := *notFound
		e.Message = fmt.Sprintf("neither the status URL nor SIM %s is known to Asavie (%s)", cli, notFound.Message)
		return providers.Outcome{Status: providers.Failed, Result: res, Err: &e}
	}
	out := outcomeOfSIM(card, handle, "status URL expired; SIM found")
	out.Result = mergeResult(res, out.Result)
	return out
}

// outcomeOfSIM reads completion off a SIM's actor status.
func outcomeOfSIM(card SIMCard, handle, note string) providers.Outcome {
	res := cardResult(card)
	res["note"] = note
	switch card.ActorStatus {
	case ActorPending:
		return providers.Outcome{Status: providers.Accepted, Handle: handle, Result: res}
	case ActorStalled:
		return providers.Outcome{Status: providers.Failed, Result: res, Err: stalledError(card)}
	}
	return providers.Outcome{Status: providers.Succeeded, Result: res}
}

func isStatusURL(handle string) bool { return strings.Contains(handle, "/status/") }

// readFailure is a GET that got no answer: retryable by classification,
// and never "maybe applied" since a GET changes nothing.
func readFailure(err error) providers.Outcome {
	e := *providers.AsError(err)
	e.MaybeApplied = false
	return providers.Outcome{Status: providers.Failed, Err: &e}
}
