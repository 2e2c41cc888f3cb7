package platform

import (
	"flag"
	"fmt"
	"io"

	"faas/proxies/bus"
)

// Keys is `faas keys [--dir D]`: it writes a fresh keypair for every role,
// and each role's environment, to D.
func Keys(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	dir := fs.String("dir", "keys", "directory to write the keys to; it must not hold keys already")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys: unexpected arguments %q", fs.Args())
	}
	ring, err := bus.NewKeyring()
	if err != nil {
		return err
	}
	if err := ring.Write(*dir); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	fmt.Fprintf(out, "wrote keys for %v to %s: give each process its <role>.env (or FAAS_BUS_KEY_FILE=<role>.key and the public keys it lists); keep the .key files secret\n", bus.Roles, *dir)
	return nil
}
