package asavie

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/simbulk/simbulk/providers"
)

// Lookup asks Asavie for the SIM with the order's CLI on the order's
// account. Unknown (404, as HTTP status or envelope Code) is Found=false
// without an error. A SIM still being created (ActorStatus pending) is
// Found and Pending, so crash recovery never sends it again.
func (c *Client) Lookup(ctx context.Context, o providers.Order) (providers.Subscription, error) {
	account, cli := strings.TrimSpace(o.Fields["account"]), strings.TrimSpace(o.CLI)
	if account == "" || cli == "" {
		return providers.Subscription{}, &providers.Error{Code: providers.CodeRejected, Message: "lookup needs the order's account and CLI"}
	}
	card, found, err := c.fetchSIM(ctx, account, cli)
	if err != nil || !found {
		return providers.Subscription{}, err
	}
	sub := subscriptionOf(card)
	sub.Conflict = difference(o, card)
	return sub, nil
}

// fetchSIM GETs one SIM. found is false on 404.
func (c *Client) fetchSIM(ctx context.Context, account, cli string) (SIMCard, bool, error) {
	resp, err := c.send(ctx, http.MethodGet, c.base+simPath(account, cli), nil)
	if err != nil {
		e := *providers.AsError(err)
		e.MaybeApplied = false
		return SIMCard{}, false, &e
	}
	a, perr := readAnswer(resp, "SIM lookup", false, c.maxRetryAfter)
	if perr != nil {
		if a.status == http.StatusNotFound {
			return SIMCard{}, false, nil
		}
		return SIMCard{}, false, perr
	}
	var card SIMCard
	err = errors.New("no SIM in Data")
	if a.hasData() {
		err = json.Unmarshal(a.Data, &card)
		if err == nil && card.CLI == "" {
			err = errors.New("SIM without a CLI")
		}
	}
	if err != nil {
		e := malformed(resp.Status, "SIM lookup", err, resp.Body)
		e.MaybeApplied = false
		return SIMCard{}, false, e
	}
	return card, true, nil
}

// subscriptionOf reads a SIM as the provider-neutral Subscription. A SIM
// is Active when its creation has finished (actor stable) and its state is
// one a working SIM has: notactivated, ready, test or live. The simulator
// leaves a created SIM "ready".
func subscriptionOf(card SIMCard) providers.Subscription {
	sub := providers.Subscription{
		Found:       true,
		State:       card.State.String(),
		Pending:     card.ActorStatus == ActorPending,
		Identifiers: map[string]string{"cli": card.CLI},
	}
	if card.SIMNumber != "" {
		sub.Identifiers["iccid"] = card.SIMNumber
	}
	switch card.State {
	case StateNotActivated, StateReady, StateTest, StateLive:
		sub.Active = card.ActorStatus == ActorStable
	}
	return sub
}
