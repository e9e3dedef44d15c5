# The sample app's own page texts (ids app-*); the framework's (login-title, field-email, …) come from Rampart's built-in catalogs.

app-skip = Skip to content
app-account-menu = Account menu for { $name }
app-signed-in-as = Signed in as
app-your-profile = Your profile
app-security = Security
app-sign-out = Sign out
app-account = Account
app-built-with = built with Rampart, Flask-Security for axum
app-terms = Terms
app-optional = (optional)
app-error = Error:
app-check-form = Please check the form: { $count ->
        [one] one field needs
       *[other] { $count } fields need
    } a change
app-or-continue-with = or continue with
app-login-continue = to continue to { $app }
app-or = or
app-email-code = Email me a sign-in code
app-new-to = New to { $app }?
app-no-confirmation = Didn't get the confirmation email?
app-send-again = Send it again
app-register-heading = Create your account
app-register-intro-confirm = It takes a minute; we'll email you a link to confirm your address.
app-register-intro = It takes a minute.
app-terms-of-service = Terms of service
app-password-hint = At least 8 characters.
app-agree = I agree to the
app-terms-link = terms of service
app-create-account = Create account
app-or-sign-up-with = or sign up with
app-provider-agree = Signing up with a provider, you agree to the
app-have-account = Already have an account?
app-reset-expired = This reset link has expired
app-reset-unusable = This reset link can't be used
app-reset-resent = Reset links expire after { $within }, so we have emailed you a new one: use the link in the newest email.
app-reset-rules = Password reset links work once, stop working when your password changes, and expire after { $within }. Enter your email and we'll send you a new one.
app-forgot-intro = Enter the email you signed up with and we'll send you a link to choose a new password.
app-remembered = Remembered it?
app-reset-intro = You will sign in with it from now on; every other session of yours is signed out.
app-set-new-password = Set new password
app-link-expired = This link has expired
app-link-unusable = This link can't be used
app-confirm-heading = Confirm your email
app-confirm-resent = Confirmation links expire after { $within }, so we have emailed you a new one: use the link in the newest email. Wrong address? Send a link to another one below.
app-confirm-rules = Confirmation links work once and expire after { $within }. If you have already confirmed your address, you can simply
app-sign-in-lower = sign in
app-confirm-otherwise = Otherwise, enter your email and we'll send you a fresh link.
app-confirm-intro = Didn't get the email, or the link expired? Enter your address and we'll send a new confirmation link.

# How the pages spot a flash that says a new link was mailed (the expired-link messages below).
app-resent-marker = have been sent
