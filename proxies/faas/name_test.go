package faas_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, valid := range map[string]bool{
		"a": true, "Alice_1.2-3": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false,
		"a%2F": false, "ñ": false, "a\x00": false,
		".": false, "..": false, "...": false, ".a": true, "a..": true,
	} {
		require.Equal(t, valid, faas.ValidName(name), "%q", name)
	}
}
