package signature

import (
	"sort"
	"testing"
)

// BenchmarkVerify verifies a 1 KB body signed with the older of two active
// secrets, the slowest accepted path.
func BenchmarkVerify(b *testing.B) {
	names := make([]string, 0, len(fixtures))
	for name := range fixtures {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fx := fixtures[name]
		b.Run(name, func(b *testing.B) {
			body := fx.body(1024 - len(fx.body(0)))
			r := fx.request(b, fx.secrets[1], body, body, at, at.Add(checkDelay))
			v := fx.verifier(b)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
