"""LLM providers, the LLM gateway and the scripted LLM server (issue 11)."""
