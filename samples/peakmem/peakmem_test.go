package peakmem

import "testing"

func TestRSSGrowsWithMemoryTouched(t *testing.T) {
	before := RSS()
	if before == 0 {
		t.Skip("this system does not report peak RSS")
	}
	big := make([]byte, 64<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	after := RSS()
	if after < before+48<<20 {
		t.Errorf("peak RSS %d MiB after touching 64 MiB, was %d MiB", after>>20, before>>20)
	}
	_ = big[len(big)-1]
}
