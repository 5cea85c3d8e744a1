"""PBX adapters: Asterisk (AMI) and Twilio turned into PBX-neutral call events."""
