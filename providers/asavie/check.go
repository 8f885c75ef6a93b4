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
		case dataErr == nil && normStatus(string(st.Status)) == StatusFailed:
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
		return unreadableStatus(resp.Status, res, dataErr, resp.Body)
	}
	if st.Status == "" {
		// A SIM resource, not a request status.
		var card SIMCard
		if err := json.Unmarshal(a.Data, &card); err != nil || card.CLI == "" {
			if err == nil {
				err = fmt.Errorf("no Status and no CLI")
			}
			return unreadableStatus(resp.Status, res, fmt.Errorf("neither a request status nor a SIM: %w", err), a.Data)
		}
		// The SIM resource is the handle resolveConflict gives a SIM found
		// still being created; a status URL that answers with the SIM (as
		// the captured command answer carries it) is just done or not.
		note := "already existed"
		if isStatusURL(handle) {
			note = ""
		}
		out := outcomeOfSIM(card, handle, note)
		out.Result = mergeResult(res, out.Result)
		return out
	}
	switch normStatus(string(st.Status)) {
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
	return unreadableStatus(resp.Status, res, fmt.Errorf("unknown Status %.40q", string(st.Status)), a.Data)
}

// unreadableStatus is a status answer the client cannot act on: an
// unknown Status word, a Data of another shape, no Data at all. The
// status resource's shape is simbulk's guess (see the package doc), so
// such an answer is never read as "still pending", which would keep the
// row waiting forever. It is a retryable CodeMalformed quoting Asavie's
// words: the pipeline looks again a bounded number of times and then
// fails the row as unreadable_answer. A GET changed nothing, so it is
// never maybe-applied.
func unreadableStatus(status int, res map[string]string, err error, said []byte) providers.Outcome {
	e := malformed(status, "status answer", err, said)
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
	if note != "" {
		res["note"] = note
	}
	switch card.ActorStatus {
	case ActorPending:
		return providers.Outcome{Status: providers.Accepted, Handle: handle, Result: res}
	case ActorStalled:
		return providers.Outcome{Status: providers.Failed, Result: res, Err: stalledError(card)}
	}
	return providers.Outcome{Status: providers.Succeeded, Result: res}
}

// isStatusURL tells a StatusUrl from the SIM resource handle resolveConflict
// hands out. Asavie's StatusUrls come in two forms: ".../status/{id}" (the
// form simbulk first assumed) and ".../sims/{cli}/status?cmdid=..." (the
// form captured from the live API in GraphDefined/AsavieAPI). Both end
// their path in a "status" segment or one below it; a CLI or account
// key cannot fake that, since both are escaped into a single segment.
func isStatusURL(handle string) bool {
	path, _, _ := strings.Cut(handle, "?")
	path, _, _ = strings.Cut(path, "#")
	segs := strings.Split(strings.TrimRight(path, "/"), "/")
	n := len(segs)
	return n >= 1 && segs[n-1] == "status" || n >= 2 && segs[n-2] == "status"
}

// readFailure is a GET that got no answer: retryable by classification,
// and never "maybe applied" since a GET changes nothing.
func readFailure(err error) providers.Outcome {
	e := *providers.AsError(err)
	e.MaybeApplied = false
	return providers.Outcome{Status: providers.Failed, Err: &e}
}
