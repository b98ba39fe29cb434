"""The words and shapes :mod:`conversations.password_guard` knows (steps 2 to 4 of its
docstring): the password and user keywords as patterns on normalized tokens, "clave" as an
adjective, what may sit between a keyword and its value (copulas, fillers, connectors), the
words that follow a keyword without being a secret, and the shapes of a value that is none
(addresses, dates, times, ordinals, ticket and resolution numbers). Data only, and ``_words``
to write a list of words.
"""

from __future__ import annotations

import re
import string

# --- keywords, on normalized tokens (lowercase, no accents) ----------------------------------

_PASSWORD_WORD = re.compile(
    r"""
      contr?a?[sc]+e?(?:nh|ni|n)i?as?   # contrasena(s), contrasenia, contrasenha, contrsena,
                                        # contasena, contracena, contrasna
    | claves?
    | pass | pas?s?w(?:or|ro)?ds?       # pass, passwd, paswd, password(s), pasword, passwrod
    | pwd? | psw                        # pw, pwd, psw
    | pin
    """,
    re.VERBOSE,
)
_WEAK_PASSWORD_WORD = re.compile(r"contra|key")
_USER_WORD = re.compile(r"usuari[oa]s?|usario|usuaro|usurio|user(?:name)?|usr|login")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# "palabra clave", "es clave", "punto clave": the adjective, not the password.
_CLAVE_AS_ADJECTIVE_AFTER = _words(
    """
    palabra palabras punto puntos es son era fue sera seria muy tan mas tema temas dato datos
    pieza piezas factor factores elemento elementos momento momentos fecha fechas rol papel
    aspecto aspectos idea ideas pregunta preguntas concepto conceptos actor actores paso pasos
    indicador indicadores
    """
)

# --- what sits between a keyword and its value -----------------------------------------------

# Copulas: "mi contraseña ES …" makes what follows an assignment.
_COPULAS = _words("es era sera seria fue son eran ser sea is queda quedo quedaria como")

# Skipped between the keyword and the value: "la contraseña DEL PORTAL es …", "clave SOL: …".
_FILLERS = _words(
    """
    de del a al la el lo las los mi mis tu tus su sus para por en the my
    actual nueva nuevo temporal provisional secreta sol web virtual acceso ingreso portal pte
    sistema correo cuenta email institucional ahora entonces
    """
)

# Connectors between "usuario X" and "contraseña Y" in the pair rule.
_CONNECTORS = _words("y e con and mi su tu la el")

# Words (normalized; plurals are reduced) that follow "contraseña"/"clave" in questions and
# complaints, so they are never taken for the password itself.
_NOT_A_SECRET = _words(
    """
    que cual cuales como donde cuando quien quienes cuanto cuanta porque pq xq para por
    pero sino solo aun todavia siempre nunca ahora hoy ayer bien mal asi aqui alli ahi
    tambien tampoco muy mas menos tan igual igualito algo nada nadie alguna alguno ninguna
    ninguno cada otra otro misma mismo toda todo esta este esto esa ese eso estas estos esas
    esos aquel aquella aquello una unos unas ella ellos usted ustedes nosotros ellas
    correcta correcto incorrecta incorrecto valida valido invalida invalido errada errado
    erronea erroneo equivocada equivocado nueva nuevo antigua antiguo anterior vieja viejo
    actual temporal provisional provisoria vencida vencido caducada caducado expirada expirado
    bloqueada bloqueado desbloqueada desbloqueado inactiva inactivo activa activo olvidada
    olvidado cambiada cambiado reseteada reseteado restablecida restablecido recuperada
    recuperado generada generado asignada asignado enviada enviado distinta distinto diferente
    segura seguro insegura inseguro debil fuerte larga largo corta corto facil dificil
    complicada complicado sencilla sencillo simple secreta secreto personal intransferible
    privada privado confidencial obligatoria obligatorio necesaria necesario requerida
    requerido importante sensible unica unico propia propio institucional siguiente mala malo
    buena bueno demasiado demasiada bastante minimo minima maximo maxima caracter caracteres
    digito numero letra mayuscula minuscula simbolo espacio
    funciona funcionaba sirve servia falla fallo existe aparece sale salio dice decia entra
    entro vence vencio expira expiro caduca caduco cambia cambio tiene tenia tengo esta estan
    estaba queda quedo pide pedia llega llego acepta aceptaba reconoce figura debe deberia
    puede podria necesito necesita olvide olvido perdi recuerdo acuerdo desconozco cambie
    puse pusieron dieron enviaron mandaron ingrese ingreso ingresar entrar cambiar recuperar
    restablecer resetear actualizar crear generar poner usar escribir distingue incluye
    contiene lleva
    dni ruc documento correo email mail gmail hotmail nombre apellido fecha celular telefono
    usuario cuenta sistema portal pagina link enlace acceso codigo mensaje error problema
    ayuda favor porfa porfavor gracias soporte hola buenas buenos dias tardes noches
    """
)

# Adverbs and superlatives ("rápidamente", "sencillísima") describe, they are not passwords.
_PROSE_ENDING = re.compile(r"(?:mente|isim[oa]s?)$")

# What may follow a plain-word value that stands alone: "clave: perrito y usuario jperez".
_PHRASE_BREAKS = _words("y e o u pero gracias ok okey porfa xfa saludos atte")

# --- shapes of a value, on the folded token (case kept) --------------------------------------

_ADDRESS = re.compile(
    r"""
      [^@\s]+@[^@\s]+\.[^\W\d_]{2,}          # jperez@munilima.gob.pe
    | (?:https?://|www\.)\S+                  # links
    | [\w-]+(?:\.[\w-]+)*\.(?:gob|com|org|net|edu)(?:\.pe)?(?:/\S*)?   # transparencia.gob.pe
    """,
    re.VERBOSE | re.IGNORECASE,
)
_NOT_A_SECRET_SHAPE = re.compile(
    r"""
      \d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?   # dates: 15/03/2026, 2026-03-15, 15.03
    | \d{1,2}[:h]\d{2}(?:am|pm|hrs?|h)?       # times: 10:30, 9h30
    | \d{1,2}(?:am|pm|hrs?)                   # 10am, 8hrs
    | \d+(?:ro|ra|do|da|er|to|ta|vo|va|no|na|mo|ma|°|o)\.?   # ordinals: 2do, 1ra, 3er, 5to
    | (?:n|nro|num)[.°o]*\d+                  # N°045, nro.12
    | \d+(?:kb|mb|gb|km|kg|min|seg)           # units
    | (?:[a-z]+-)?\d+-(?:19|20)\d{2}(?:-[a-z0-9]+)+   # resolutions: 045-2026-MDSJL
    | [a-z]+-(?:19|20)\d{2}-\d+               # tickets: PTE-2026-000123
    """,
    re.VERBOSE,
)
# Symbols that make a token look like a secret; ". - '" also join ordinary words and names.
_SYMBOLS = frozenset(string.punctuation) - frozenset(".-'")
