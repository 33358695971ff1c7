package app

import (
	"context"
	"errors"
)

// nodesCommand is a placeholder until its issue lands.
func nodesCommand() *Command {
	return &Command{
		Name:  "nodes",
		Short: "nodes (not built yet)",
		Run: func(context.Context, *Globals, []string) error {
			return errors.New("nodes is not built yet")
		},
	}
}
