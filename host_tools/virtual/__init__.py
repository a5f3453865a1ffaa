"""The virtual boards the tools and tests run against, and their one pty relay."""
