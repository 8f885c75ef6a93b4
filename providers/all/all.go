// Package all registers the providers simbulk ships with. Import it for
// its effect, once, from a program (cmd/simbulk, the benchmarks) or a test
// that needs them; adding a provider is its own package plus one line
// here.
package all

import (
	"github.com/simbulk/simbulk/providers"
	"github.com/simbulk/simbulk/providers/asavie"
	"github.com/simbulk/simbulk/providers/iotconnect"
	"github.com/simbulk/simbulk/providers/thingspace"
)

func init() {
	providers.Register(iotconnect.Descriptor())
	providers.Register(asavie.Descriptor())
	providers.Register(thingspace.Descriptor())
}
