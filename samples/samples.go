// Package samples holds the sample manifests and the sample simbulk.yaml
// that the README, `make demo` and the tests use, and synthesises the
// devices in them.
//
// Every identifier is made up but well formed: EIDs and ICCIDs carry
// correct check digits, and phone numbers come from ranges set aside for
// fiction and tests (the UK's 07700 900xxx drama range, the test network
// 001-01 for IMSIs), so no sample can ever reach a real subscriber.
//
// The files are generated: edit gen/main.go or this file, then run
// `go generate ./samples` (or `make samples`). Output is deterministic, so
// regenerating without a change leaves git clean.
package samples

//go:generate go run ./gen -dir .

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/simbulk/simbulk/ingest"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/thingspace"
)

// Providers are the providers NewDevice makes devices for, in the order a
// mixed manifest interleaves them.
var Providers = []string{iotconnect.Name, asavie.Name, thingspace.Name}

// Device is one synthetic device and the provider fields a manifest row
// carries for it. The csv tags are the canonical column names, which is
// the mixed manifest's header.
type Device struct {
	Provider string `csv:"provider"`
	EID      string `csv:"eid"`
	ICCID    string `csv:"iccid"`
	CLI      string `csv:"cli"`
	IMEI     string `csv:"imei"`

	// iotconnect
	CMP              string `csv:"cmp"`
	DomainID         string `csv:"domain_id"`
	EUICCAgreementID string `csv:"euicc_agreement_id"`
	LocaleID         string `csv:"locale_id"`

	// asavie
	Account      string `csv:"account"`
	Description  string `csv:"description"`
	InventoryRef string `csv:"inventory_ref"`
	Tariff       string `csv:"tariff"`
	Bundle       string `csv:"bundle"`
	Operator     string `csv:"operator"`

	// thingspace
	AccountName  string `csv:"account_name"`
	ServicePlan  string `csv:"service_plan"`
	CarrierName  string `csv:"carrier_name"`
	MDNZipCode   string `csv:"mdn_zip_code"`
	FirstName    string `csv:"first_name"`
	LastName     string `csv:"last_name"`
	AddressLine1 string `csv:"address_line1"`
	City         string `csv:"city"`
	State        string `csv:"state"`
	Zip          string `csv:"zip"`
	Country      string `csv:"country"`
}

// Columns is the mixed manifest's header, in the order of Device's fields
// and of Record.
var Columns = []string{
	ingest.ColProvider, ingest.ColEID, ingest.ColICCID, ingest.ColCLI, ingest.ColIMEI,
	ingest.ColCMP, ingest.ColDomainID, ingest.ColEUICCAgreementID, ingest.ColLocaleID,
	ingest.ColAccount, ingest.ColDescription, ingest.ColInventoryRef, ingest.ColTariff, ingest.ColBundle, ingest.ColOperator,
	ingest.ColAccountName, ingest.ColServicePlan, ingest.ColCarrierName, ingest.ColMDNZipCode,
	ingest.ColFirstName, ingest.ColLastName, ingest.ColAddressLine1, ingest.ColCity, ingest.ColState, ingest.ColZip, ingest.ColCountry,
}

// Record returns the device as a mixed-manifest row, in Columns order.
// Writers of large files use it instead of reflection.
func (d Device) Record() []string {
	return []string{
		d.Provider, d.EID, d.ICCID, d.CLI, d.IMEI,
		d.CMP, d.DomainID, d.EUICCAgreementID, d.LocaleID,
		d.Account, d.Description, d.InventoryRef, d.Tariff, d.Bundle, d.Operator,
		d.AccountName, d.ServicePlan, d.CarrierName, d.MDNZipCode,
		d.FirstName, d.LastName, d.AddressLine1, d.City, d.State, d.Zip, d.Country,
	}
}

// NewDevice returns device number n for provider. The same (provider, n)
// always gives the same device, and different n give different
// identifiers, so any run of n makes a manifest without duplicates.
func NewDevice(provider string, n int) Device {
	d := Device{Provider: provider}
	// Identifiers derive from id, not n, so that device n of one provider
	// shares no identifier with device n of another.
	id := n*len(Providers) + slices.Index(Providers, provider)
	switch provider {
	case iotconnect.Name:
		// An eSIM registered by EID; IoT Connect assigns ICCID and IMSI.
		d.EID = EID(id)
		d.IMEI = IMEI(id)
		d.CMP = pick(n, "IOTA_EU", "IOTA_EU", "IOTA_EU", "ARQIA_BR", "THINGSPACE_US")
		if n%3 != 0 { // optional: without it the device joins the caller's own domain
			d.DomainID = pick(n, "a1ce25s2-c23edcs9", "fleet001", "depot042-north001-rack0007")
		}
		d.EUICCAgreementID = "AGR-DEMO-0001"
		d.LocaleID = pick(n, "en_GB", "nb_NO", "pt_BR")
	case asavie.Name:
		// A physical SIM keyed by CLI, with its ICCID for the record.
		d.ICCID = ICCID("894430", 19, id)
		d.CLI = CLI(n)
		d.Account = "SIMBULK-DEMO"
		d.Description = fmt.Sprintf("Demo tracker %04d", n)
		d.InventoryRef = fmt.Sprintf("INV-2026-%05d", n)
		d.Tariff = pick(n, "IoT 10MB", "IoT 100MB")
		d.Bundle = pick(n, "EU Roaming", "", "UK Only")
		d.Operator = "DemoNet UK"
	case thingspace.Name:
		// An eUICC activated by EID and ICCID; Verizon assigns the MDN.
		d.EID = EID(id)
		d.ICCID = ICCID("8914800000", 20, id)
		d.IMEI = IMEI(id)
		d.AccountName = "0000123456-00001"
		d.ServicePlan = pick(n, "M2M 5GB", "HybridESim")
		d.CarrierName = "Verizon Wireless"
		d.MDNZipCode = pick(n, "62701", "10001", "94105")
		d.FirstName = "Demo"
		d.LastName = fmt.Sprintf("Device-%04d", n)
		d.AddressLine1 = fmt.Sprintf("%d Example Street", 100+n%900)
		d.City, d.State, d.Zip = pick3(n,
			[3]string{"Springfield", "IL", "62701"},
			[3]string{"New York", "NY", "10001"},
			[3]string{"San Francisco", "CA", "94105"})
		d.Country = "US"
	default:
		panic("samples: unknown provider " + provider)
	}
	return d
}

// EID returns a valid EID (MOD 97-10 check digits) unique for n.
func EID(n int) string {
	first30 := "8904903212345" + serial(n, 17)
	return first30 + ingest.EIDCheckDigits(first30)
}

// ICCID returns a valid ICCID of length digits (19 or 20, with its Luhn
// digit) starting with prefix, unique for n.
func ICCID(prefix string, length, n int) string {
	payload := prefix + serial(n, length-1-len(prefix))
	return payload + string(ingest.LuhnDigit(payload))
}

// IMEI returns a valid 15-digit IMEI (Luhn) unique for n.
func IMEI(n int) string {
	payload := "35" + serial(n, 12)
	return payload + string(ingest.LuhnDigit(payload))
}

// CLI returns a CLI unique for n. The UK drama range 07700 900000-900999
// holds only 1000 numbers, so the first 1000 devices get MSISDNs from it,
// alternating Asavie's "(+44)7700900123" form and plain E.164, and later
// ones get 15-digit IMSIs from the test network 001-01.
func CLI(n int) string {
	switch {
	case n >= 1000:
		return "00101" + fmt.Sprintf("%010d", n)
	case n%2 == 0:
		return fmt.Sprintf("(+44)7700900%03d", n)
	default:
		return fmt.Sprintf("+447700900%03d", n)
	}
}

// serial spreads n over width digits so that consecutive devices do not
// look alike: n*m+c mod 10^width is one-to-one for m coprime to 10 (m
// ends in 1), so distinct n below 10^width never collide.
func serial(n, width int) string {
	mod := uint64(1)
	for range width {
		mod *= 10
	}
	hi, lo := bits.Mul64(uint64(n)%mod, 7_046_029_254_386_353_131) // 128 bits: no overflow before the mod
	v := (bits.Rem64(hi, lo, mod) + 2_718_281_828_459_045_235%mod) % mod
	return fmt.Sprintf("%0*d", width, v)
}

func pick(n int, choices ...string) string { return choices[n%len(choices)] }

func pick3(n int, choices ...[3]string) (string, string, string) {
	c := choices[n%len(choices)]
	return c[0], c[1], c[2]
}
