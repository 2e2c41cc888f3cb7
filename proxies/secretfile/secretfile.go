// Package secretfile reads a setting that may be given inline or in a
// file, as Docker and Compose secrets are: NAME=value or NAME_FILE=path.
// Secrets in files stay out of the process's environment, which root and
// the same user can read through /proc, and out of `docker inspect`.
package secretfile

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Resolve returns the setting called name, given inline as value or in
// the file named by name_FILE (file), without the surrounding white space
// a file usually ends with. Setting both is an error, as is an empty
// file: an empty admin token or key means "off" when set inline, which a
// file left empty by mistake must not turn into silently. Neither set
// gives "". Errors never hold the value.
func Resolve(name, value, file string) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("both %s and %s_FILE are set: want one", name, name)
	case file == "":
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New(name + "_FILE " + file + " is empty: want the value in it, or unset " + name + "_FILE")
	}
	return s, nil
}
