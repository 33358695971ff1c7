package app

import (
	"context"
	"errors"
)

// provisionerCommand is a placeholder until its issue lands.
func provisionerCommand() *Command {
	return &Command{
		Name:  "provisioner",
		Short: "provisioner (not built yet)",
		Run: func(context.Context, *Globals, []string) error {
			return errors.New("provisioner is not built yet")
		},
	}
}
