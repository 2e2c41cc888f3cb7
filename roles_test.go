package main

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRoleVariablesDocumented checks that every variable a role reads
// has a meaning for faas <role> --help: a field added without a desc tag
// fails here rather than showing a blank in the help.
func TestRoleVariablesDocumented(t *testing.T) {
	t.Parallel()
	for _, r := range roleList() {
		for _, c := range r.Config {
			typ := reflect.TypeOf(c).Elem()
			for field := range typ.Fields() {
				if name := field.Tag.Get("envconfig"); name != "" {
					require.NotEmpty(t, field.Tag.Get("desc"), "%s: %s.%s (%s) has no desc tag", r.Name, typ, field.Name, name)
				}
			}
		}
	}
}
