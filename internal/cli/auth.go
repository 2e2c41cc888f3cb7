package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"faas/frontend"
)

// RegisterOptions are faas register's.
type RegisterOptions struct {
	F    *Factory
	User string
	// URL is --url; empty means the configured one, or DefaultURL.
	URL  string
	JSON bool
}

func newRegisterCmd(f *Factory) *cobra.Command {
	o := &RegisterOptions{F: f}
	cmd := &cobra.Command{
		Use:   "register <user>",
		Short: "Create a user and store its credentials",
		Long:  "Create a user on the platform and store the URL, the user and the token in the config file, so that the other commands use them.",
		Args:  exactArgs("user"),
		RunE:  withJSON(&o.JSON, func(args []string) { o.User = args[0] }, func(ctx context.Context) error { return runRegister(ctx, o) }),
	}
	cmd.Flags().StringVar(&o.URL, "url", "", "the platform's URL (default: the configured one, else "+DefaultURL+")")
	return cmd
}

func runRegister(ctx context.Context, o *RegisterOptions) error {
	conf, err := o.F.Config()
	if err != nil {
		return err
	}
	if o.URL != "" {
		conf.URL = o.URL
	}
	if conf.URL == "" {
		conf.URL = DefaultURL
	}
	// Registration carries no token; the stored one may be another user's.
	cr, err := o.F.newClient(Config{URL: conf.URL}).Register(ctx, o.User)
	if err != nil {
		return err
	}
	return saveCredentials(o.F, Config{URL: conf.URL, User: cr.Name, Token: cr.Token}, o.JSON, "registered "+cr.Name)
}

// saveCredentials stores c and tells the user so, showing the token only
// on -o json (a script may need it; a terminal's scrollback should not).
func saveCredentials(f *Factory, c Config, asJSON bool, what string) error {
	path, err := f.SaveConfig(c)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(f.IO.Out, frontend.Credentials{Name: c.User, Token: c.Token})
	}
	fmt.Fprintf(f.IO.Out, "%s; credentials saved to %s\n", what, path)
	return nil
}

// LoginOptions are faas login's.
type LoginOptions struct {
	F     *Factory
	URL   string
	User  string
	Token string
	JSON  bool
}

func newLoginCmd(f *Factory) *cobra.Command {
	o := &LoginOptions{F: f}
	cmd := &cobra.Command{
		Use:   "login --url U --user u --token t",
		Short: "Check and store existing credentials",
		Args:  exactArgs(),
		RunE:  withJSON(&o.JSON, nil, func(ctx context.Context) error { return runLogin(ctx, o) }),
	}
	cmd.Flags().StringVar(&o.URL, "url", "", "the platform's URL (default "+DefaultURL+")")
	cmd.Flags().StringVar(&o.User, "user", "", "user name")
	cmd.Flags().StringVar(&o.Token, "token", "", "the user's token")
	return cmd
}

func runLogin(ctx context.Context, o *LoginOptions) error {
	if o.User == "" || o.Token == "" {
		return usagef("login needs --user and --token")
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
	c := Config{URL: o.URL, User: o.User, Token: o.Token}
	// Reading the user's billed time proves the token before it is kept.
	if _, err := o.F.newClient(c).BilledTime(ctx); err != nil {
		return err
	}
	return saveCredentials(o.F, c, o.JSON, "logged in as "+o.User)
}

// TokenRotateOptions are faas token rotate's.
type TokenRotateOptions struct {
	F    *Factory
	JSON bool
}

func newTokenCmd(f *Factory) *cobra.Command {
	o := &TokenRotateOptions{F: f}
	return noun("token", "Manage the user's token", &cobra.Command{
		Use:   "rotate",
		Short: "Replace the token; the old one stops working at once",
		Args:  exactArgs(),
		RunE:  withJSON(&o.JSON, nil, func(ctx context.Context) error { return runTokenRotate(ctx, o) }),
	})
}

func runTokenRotate(ctx context.Context, o *TokenRotateOptions) error {
	conf, err := o.F.Config()
	if err != nil {
		return err
	}
	c, err := o.F.Client()
	if err != nil {
		return err
	}
	cr, err := c.RotateToken(ctx)
	if err != nil {
		return err
	}
	conf.Token = cr.Token
	return saveCredentials(o.F, conf, o.JSON, "token rotated")
}

// printJSON writes v indented, for scripts and people alike.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
