"""Who someone is: signing up and in, passwords, codes, tokens (people's and programs'), proven
addresses, ended sign-ins, e-mail change and password recovery."""
