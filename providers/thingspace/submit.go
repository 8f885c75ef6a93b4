package thingspace

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/simbulk/simbulk/providers"
)

// requestFields are the request-level fields of an activate request: every
// device in one request shares them, so orders are grouped by them.
type requestFields struct {
	account, servicePlan, carrierName, mdnZip, ipPool string
	name                                              customerName
	addr                                              address
}

func fieldsOf(o providers.Order, defaultAccount string) requestFields {
	f := func(k string) string { return strings.TrimSpace(o.Fields[k]) }
	account := f("account_name")
	if account == "" {
		account = defaultAccount
	}
	return requestFields{
		account:     account,
		servicePlan: f("service_plan"),
		carrierName: f("carrier_name"),
		mdnZip:      f("mdn_zip_code"),
		ipPool:      f("carrier_ip_pool_name"),
		name: customerName{
			Title: f("title"), FirstName: f("first_name"), MiddleName: f("middle_name"),
			LastName: f("last_name"), Suffix: f("suffix"),
		},
		addr: address{
			AddressLine1: f("address_line1"), AddressLine2: f("address_line2"), City: f("city"),
			State: f("state"), Zip: f("zip"), Zip4: f("zip4"), Country: f("country"),
		},
	}
}

// BatchKey is equal for orders that can share one activate request: see
// RequestGroup. The pipeline batches by it, so that a manifest whose rows
// each name another customer sends its requests in parallel, not one
// after another inside a single Submit.
func (c *Client) BatchKey(o providers.Order) string {
	return RequestGroup(o, c.cfg.AccountName)
}

// RequestGroup names the activate request an order can share: orders with
// the same request-level fields (account, plan, carrier, ZIP, IP pool,
// place of use) may go in one request of up to 100 devices; orders that
// differ need requests of their own. defaultAccount is the account of
// orders that name none. A dry run counts requests with it.
func RequestGroup(o providers.Order, defaultAccount string) string {
	rf := fieldsOf(o, defaultAccount)
	return strings.Join([]string{rf.account, rf.servicePlan, rf.carrierName, rf.mdnZip, rf.ipPool,
		rf.name.Title, rf.name.FirstName, rf.name.MiddleName, rf.name.LastName, rf.name.Suffix,
		rf.addr.AddressLine1, rf.addr.AddressLine2, rf.addr.City, rf.addr.State, rf.addr.Zip, rf.addr.Zip4, rf.addr.Country}, "\x00")
}

// request builds the activate body for the devices of one group.
func (rf requestFields) request(devices []activateDevice) activateRequest {
	r := activateRequest{
		Devices: devices, AccountName: rf.account, ServicePlan: rf.servicePlan,
		CarrierName: rf.carrierName, MdnZipCode: rf.mdnZip, CarrierIPPoolName: rf.ipPool,
	}
	var pou placeOfUse
	if rf.name != (customerName{}) {
		n := rf.name
		pou.CustomerName = &n
	}
	if rf.addr != (address{}) {
		a := rf.addr
		pou.Address = &a
	}
	if pou.CustomerName != nil || pou.Address != nil {
		r.PrimaryPlaceOfUse = &pou
	}
	return r
}

// deviceOf returns the device ids of an order, or why ThingSpace would
// refuse it. The service refuses a whole request for one bad device, so
// such an order is failed here, alone.
func deviceOf(o providers.Order) (activateDevice, error) {
	if !allDigits(o.EID, 32, 32) {
		return activateDevice{}, errors.New("eid must be 32 digits for eUICC activation")
	}
	d := activateDevice{DeviceIDs: []deviceID{{Kind: kindEID, ID: o.EID}}}
	if o.ICCID != "" {
		if !allDigits(o.ICCID, 19, 20) {
			return activateDevice{}, errors.New("iccid must be 19 or 20 digits")
		}
		d.DeviceIDs = append(d.DeviceIDs, deviceID{Kind: kindICCID, ID: o.ICCID})
	}
	if o.IMEI != "" {
		if !allDigits(o.IMEI, 15, 16) {
			return activateDevice{}, errors.New("imei must be 15 or 16 digits")
		}
		d.DeviceIDs = append(d.DeviceIDs, deviceID{Kind: kindIMEI, ID: o.IMEI})
	}
	return d, nil
}

func allDigits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// batch is one activate request to send: the orders (by index) and the
// devices, deduplicated by EID.
type batch struct {
	fields  requestFields
	orders  []int
	devices []activateDevice
	seen    map[string]bool
}

// Submit activates orders, one request per group of orders sharing the
// request-level fields and per BatchSize devices, sent one after another.
// Every order gets an outcome: Accepted with the requestId as Handle, or
// Failed.
func (c *Client) Submit(ctx context.Context, orders []providers.Order) []providers.Outcome {
	outs := make([]providers.Outcome, len(orders))
	var batches []*batch
	open := map[requestFields]*batch{} // the group's batch still taking devices
	for i, o := range orders {
		dev, err := deviceOf(o)
		if err == nil && c.accountOf(o) == "" {
			err = errors.New("account_name is required (manifest column or config default)")
		}
		if err != nil {
			outs[i] = providers.Outcome{Status: providers.Failed, Err: &providers.Error{Code: providers.CodeRejected, Message: err.Error()}}
			continue
		}
		rf := fieldsOf(o, c.cfg.AccountName)
		b := open[rf]
		if b == nil || (len(b.devices) >= c.cfg.BatchSize && !b.seen[o.EID]) {
			b = &batch{fields: rf, seen: map[string]bool{}}
			open[rf] = b
			batches = append(batches, b)
		}
		b.orders = append(b.orders, i)
		if !b.seen[o.EID] {
			b.seen[o.EID] = true
			b.devices = append(b.devices, dev)
		}
	}
	for _, b := range batches {
		if err := ctx.Err(); err != nil {
			e := &providers.Error{Code: providers.CodeTimeout, Message: "request cancelled before sending", Retryable: true}
			for _, i := range b.orders {
				outs[i] = providers.Outcome{Status: providers.Failed, Err: copyError(e)}
			}
			continue
		}
		c.ensureCallback(ctx, b.fields.account)
		requestID, err := c.activate(ctx, b)
		for _, i := range b.orders {
			if err != nil {
				outs[i] = providers.Outcome{Status: providers.Failed, Err: copyError(err)}
				continue
			}
			outs[i] = providers.Outcome{
				Status: providers.Accepted,
				Handle: requestID,
				Result: map[string]string{"request_id": requestID, "account_name": b.fields.account, "eid": orders[i].EID},
			}
		}
	}
	return outs
}

// activate sends one activate request and returns its requestId, or the
// error every order in it shares.
func (c *Client) activate(ctx context.Context, b *batch) (string, *providers.Error) {
	resp, err := c.do(ctx, http.MethodPost, c.url(pathActivate), b.fields.request(b.devices))
	if err != nil {
		return "", providers.TransportError(err)
	}
	if resp.Status < 200 || resp.Status > 299 {
		return "", c.statusError(resp)
	}
	var ar activateResponse
	if err := json.Unmarshal(resp.Body, &ar); err != nil || ar.RequestID == "" {
		if err == nil {
			err = errors.New("no requestId")
		}
		return "", malformed(resp, "activate response", err)
	}
	return ar.RequestID, nil
}
